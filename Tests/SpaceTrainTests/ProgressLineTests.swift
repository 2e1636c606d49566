import XCTest
@testable import SpaceTrain

final class ProgressLineTests: XCTestCase {
    func testSaysWhereSpeedTimeLeftAndEachLossTerm() {
        let scalars: [String: Double] = ["loss": 120.5, "log_like": -100.3, "What_KL": 4, "Where_KL": 3, "Pres_KL": 2, "Depth_KL": 1,
                                         "Bg_KL": 10.3, "loss_boundary": 0, "count": 2.5]
        let line = Trainer.progressLine(name: "demo", step: 250, maxSteps: 1000, epoch: 2, batch: 10, batches: 500,
                                        secondsPerStep: 0.25, dataSeconds: 0.002, secondsLeft: 187.5, medianLoss: 130, scalars: scalars)
        for part in ["[demo] step 250/1000", "epoch 2, batch 10/500", "4.00 steps/s", "data 2 ms", "ETA 3m08s",
                     "loss 120.5 = -log p(x|z) 100.3", "KL fg 10.0 (what 4.0, where 3.0, pres 2.0, depth 1.0)", "KL bg 10.3",
                     "boundary 0.0", "median loss of last 20 steps 130.0", "objects/image 2.50"] {
            XCTAssertTrue(line.contains(part), "'\(part)' missing from: \(line)")
        }
    }
}
