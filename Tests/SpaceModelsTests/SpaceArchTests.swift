import Foundation
import XCTest
@testable import SpaceModels

final class SpaceArchTests: XCTestCase {
    func testDefaultsAreTheReferenceArch() {
        let a = SpaceArch()
        XCTAssertEqual(a.G, 8); XCTAssertEqual(a.K, 5); XCTAssertEqual(a.fgSigma, 0.15); XCTAssertEqual(a.imgShape, [128, 128])
        XCTAssertEqual(a.tauEndStep, 10000); XCTAssertEqual(a.zScaleMeanStartValue, -1.0); XCTAssertTrue(a.boundaryLoss)
    }

    func testDecodesSnakeCaseKeysOverDefaults() throws {
        let json = #"{"G": 16, "fix_alpha_steps": 2000, "tau_end_value": 0.1, "boundary_loss": false}"#
        let a = try JSONDecoder().decode(SpaceArch.self, from: Data(json.utf8))
        XCTAssertEqual(a.G, 16); XCTAssertEqual(a.fixAlphaSteps, 2000); XCTAssertEqual(a.tauEndValue, 0.1); XCTAssertFalse(a.boundaryLoss)
        XCTAssertEqual(a.K, 5)  // untouched default
    }

    func testValidateNamesTheKey() {
        var a = SpaceArch(); a.G = 5
        XCTAssertThrowsError(try a.validate()) { XCTAssertTrue("\($0)".contains("arch.G")) }
        a = SpaceArch(); a.K = 0
        XCTAssertThrowsError(try a.validate()) { XCTAssertTrue("\($0)".contains("arch.K")) }
        XCTAssertNoThrow(try SpaceArch().validate())
    }
}
