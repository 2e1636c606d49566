import Foundation
import XCTest
@testable import SpaceEval

/// The 40 cases scored by the reference's eval/ap.py must be reproduced to 1e-9.
final class DetectionMetricsTests: XCTestCase {
    struct Case: Decodable {
        let pred: [[[Double]]], gt: [[[Double]]]
        let iou_thresholds: [Double], APs: [Double]
        let error_rate: Double, perfect: Int, overcount: Int, undercount: Int, accuracy: Double
    }

    func box(_ v: [Double]) -> DetectionBox { DetectionBox(yMin: v[0], yMax: v[1], xMin: v[2], xMax: v[3], confidence: v.count > 4 ? v[4] : 1) }

    func testReferenceCases() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ap_cases.json")
        struct File: Decodable { let cases: [Case] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
        XCTAssertEqual(cases.count, 40)
        for (i, c) in cases.enumerated() {
            let pred = c.pred.map { $0.map(box) }, gt = c.gt.map { $0.map(box) }
            XCTAssertEqual(defaultIoUThresholds, c.iou_thresholds, "thresholds bit for bit")
            let aps = averagePrecision(predictions: pred, groundTruth: gt, iouThresholds: c.iou_thresholds)
            XCTAssertEqual(aps.count, c.APs.count)
            for (a, b) in zip(aps, c.APs) { XCTAssertEqual(a, b, accuracy: 1e-9, "case \(i) AP") }
            let counts = countMetrics(predictions: pred, groundTruth: gt)
            XCTAssertEqual(counts.errorRate, c.error_rate, accuracy: 1e-9, "case \(i)")
            XCTAssertEqual(counts.perfect, c.perfect); XCTAssertEqual(counts.overcount, c.overcount); XCTAssertEqual(counts.undercount, c.undercount)
            XCTAssertEqual(counts.accuracy, c.accuracy, accuracy: 1e-9, "case \(i)")
        }
    }

    func testHandComputedAP() {
        // One image, two ground truths; predictions (conf 0.9 hit, 0.8 miss, 0.7 hit):
        // precision 1, 1/2, 2/3; recall 1/2, 1/2, 1. Recall points 0..0.5 -> 1 (6 points), 0.6..1 -> 2/3 (5 points).
        let gt = [DetectionBox(yMin: 0, yMax: 0.2, xMin: 0, xMax: 0.2), DetectionBox(yMin: 0.5, yMax: 0.7, xMin: 0.5, xMax: 0.7)]
        let pred = [DetectionBox(yMin: 0, yMax: 0.2, xMin: 0, xMax: 0.2, confidence: 0.9),
                    DetectionBox(yMin: 0.8, yMax: 0.9, xMin: 0.8, xMax: 0.9, confidence: 0.8),
                    DetectionBox(yMin: 0.5, yMax: 0.7, xMin: 0.5, xMax: 0.7, confidence: 0.7)]
        let ap = averagePrecision(predictions: [pred], groundTruth: [gt], iouThresholds: [0.5])
        XCTAssertEqual(ap[0], (6 * 1.0 + 5 * 2.0 / 3.0) / 11, accuracy: 1e-12)
        XCTAssertEqual(countMetrics(predictions: [pred], groundTruth: [gt]).errorRate, 0.5)
    }
}
