import XCTest
import SpaceModels

final class AnnealingTests: XCTestCase {
    func testLinearAnnealingSchedule() {
        // tau 2.5 -> 0.1 over steps 0..20000 (atari_spaceinvaders): at 100, 2.5 - 2.4 * 100 / 20000 = 2.488.
        XCTAssertEqual(linearAnnealing(step: 100, startStep: 0, endStep: 20000, startValue: 2.5, endValue: 0.1), 2.488, accuracy: 1e-6)
        // at or before the start: the start value; at or after the end: the end value
        XCTAssertEqual(linearAnnealing(step: 0, startStep: 0, endStep: 20000, startValue: 2.5, endValue: 0.1), 2.5)
        XCTAssertEqual(linearAnnealing(step: 3999, startStep: 4000, endStep: 10000, startValue: 0.1, endValue: 0.01), 0.1)
        XCTAssertEqual(linearAnnealing(step: 4000, startStep: 4000, endStep: 10000, startValue: 0.1, endValue: 0.01), 0.1)
        XCTAssertEqual(linearAnnealing(step: 7000, startStep: 4000, endStep: 10000, startValue: 0.1, endValue: 0.01), 0.055, accuracy: 1e-7)
        XCTAssertEqual(linearAnnealing(step: 10000, startStep: 4000, endStep: 10000, startValue: 0.1, endValue: 0.01), 0.01)
        XCTAssertEqual(linearAnnealing(step: 50000, startStep: 4000, endStep: 10000, startValue: 0.1, endValue: 0.01), 0.01)
        // z_scale mean of 3d_room_small at step 12000: -1 + (-1) * 2000 / 10000 = -1.2
        XCTAssertEqual(linearAnnealing(step: 12000, startStep: 10000, endStep: 20000, startValue: -1, endValue: -2), -1.2, accuracy: 1e-6)
    }
}
