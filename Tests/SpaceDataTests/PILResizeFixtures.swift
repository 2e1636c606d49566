import XCTest
@testable import SpaceData
import SpaceCore

/// Expected outputs of Pillow's `Image.resize((ow, oh), Image.BILINEAR)`. `crc`, `picks` and `full`
/// come from Pillow 9.5.0 (the resampling of every Pillow from 4.x to 12.x, including the 6.2.1 the
/// reference pins); `crc13` from Pillow 13.0.0, which runs the vertical pass first for images that
/// shrink much more in height. Made by running this script (Pillow only) under each version; the
/// inputs are an xorshift32 byte stream, or a wrapped gradient when seed is 0:
///
///     import zlib
///     from PIL import Image
///
///     def noise(n, seed):
///         s, out = seed, bytearray()
///         for _ in range(n):
///             s ^= (s << 13) & 0xFFFFFFFF; s ^= s >> 17; s ^= (s << 5) & 0xFFFFFFFF
///             out.append(s & 0xFF)
///         return bytes(out)
///
///     def gradient(w, h, c):
///         return bytes((x * 3 + y * 5 + k * 50) % 256 for y in range(h) for x in range(w) for k in range(c))
///
///     cases = [(40, 30, 16, 16, 3, 1), (160, 210, 128, 128, 3, 2), (64, 64, 128, 128, 3, 3), (200, 150, 128, 128, 3, 4),
///              (210, 160, 128, 128, 1, 5), (128, 100, 128, 128, 3, 6), (7, 5, 3, 9, 1, 7), (160, 210, 128, 128, 3, 0),
///              (30, 90, 20, 25, 1, 8), (50, 60, 90, 20, 3, 9)]
///     for (w, h, ow, oh, c, seed) in cases:
///         data = gradient(w, h, c) if seed == 0 else noise(w * h * c, seed)
///         out = Image.frombytes('RGB' if c == 3 else 'L', (w, h), data).resize((ow, oh), Image.BILINEAR).tobytes()
///         picks = ', '.join(f'({p}, {out[p]})' for p in sorted({(i * 104729 + 11) % len(out) for i in range(8)}))
///         full = f', full: "{out.hex()}"' if len(out) <= 1000 else ''
///         print(f'{w} {h} {ow} {oh} {c} {seed}|{zlib.crc32(out)}|{picks}|{full}')
struct PILResizeFixture {
    let w: Int, h: Int, ow: Int, oh: Int, c: Int, seed: UInt32
    /// zlib.crc32 of the whole output, Pillow 9.5 and Pillow 13.
    let crc: UInt32, crc13: UInt32
    /// (byte offset, value) samples of the Pillow 9.5 output.
    let picks: [(Int, UInt8)]
    /// The whole Pillow 9.5 output in hex, for the small cases.
    var full: String? = nil

    var input: RGBImage {
        var bytes: [UInt8] = []
        if seed == 0 {
            for y in 0..<h { for x in 0..<w { for k in 0..<c { bytes.append(UInt8((x * 3 + y * 5 + k * 50) % 256)) } } }
        } else {
            bytes = noiseBytes(count: w * h * c, seed: seed)
        }
        return RGBImage(width: w, height: h, channels: c, pixels: bytes)
    }

    static let all: [PILResizeFixture] = [
        .init(w: 40, h: 30, ow: 16, oh: 16, c: 3, seed: 1, crc: 370080260, crc13: 370080260, picks: [(11, 118), (86, 122), (161, 140), (292, 105), (367, 127), (442, 163), (573, 152), (648, 123)], full: "5590ab6c9f7884697fa699768dac877cb05ead84766daca2617b996368af60a49a5e70799f9289aa6f885b817176776a66539b74878d7078ab7999ac8285786e7970b0a18383a8ac5f99917d9f7c8a916f62a1796da57a8e7e74887563777b9277639a88809297538b63679567927c78996a999b7da59b83767b9a7e76a57c767078a87a79c5758eb2797c7179a27897595d7c7d6467848267916c757f6187938f8c4a845b69866a7797a8537e7a8a7b5d99b6837ebd798bb662a5796e9d546c6c9f937d794b736c527286577b7893796688826265985f75a17a6c6373848d7285838c7d70a48e7d958c849da0896a719a9e925982878760888c8258976f8c93608da3804e6e6c5c9e8f74749b9481a08c8a727853a97b86b5628e87829c987b8893c27e69908271908d8877977e608a7d7a74787e8f83968681748b81617b8e98626a7e757063689a5d7f9b91c0588ea94f95876294859870ae689d8d9c6c8b9a906e9fa697779e6b718d86896d7c7f8369628a83817f6f8c59779d83837462b26e9b6582727e9495708d9b8e927597a0a76f99966e8b7b6e8c6a815b61a4595d6e5874858a7b70a4787e8d7d7e9c7b8581a27f8a9378b0a668a3a48b7c8e977d73a68d8f687a8479897e8a947f8e785c85584598447466629d78999e8aa59a776783636c7c758279867076a998826f98889365917d54a065815487907087706e8661785a826b82757b908b77b6986f71ba7e889674a079797d7c7ca39eafae7eb48f6a7b7c748459655e6e6780746e79ad656e8f538e8b807897828e988daea6748d73888361738572758e9e90808998986b727294876b87736f7e928e9d8493764d7a4d517e639a7b6c87c8a4ab7896655c987060a77a739a718b807d60706f6161986c8497537b778675778d947c978c5c8a67749a54796587727392717379867e7179a5548b7b70777f84519a896a7674a57b6f8a897b5e979172af776a957d6c9b746a8c7295828bad86946c88a39663a083797f815f68557850637d6f72636390747b958c96727a8277575d687b765d6d996c849d6a8767af52916b7e"),
        .init(w: 160, h: 210, ow: 128, oh: 128, c: 3, seed: 2, crc: 2424334245, crc13: 1319797822, picks: [(11, 117), (6436, 210), (12861, 139), (19286, 144), (25711, 133), (32136, 130), (38561, 74), (44986, 189)]),
        .init(w: 64, h: 64, ow: 128, oh: 128, c: 3, seed: 3, crc: 1964471966, crc13: 1964471966, picks: [(11, 186), (6436, 100), (12861, 130), (19286, 151), (25711, 83), (32136, 139), (38561, 140), (44986, 90)]),
        .init(w: 200, h: 150, ow: 128, oh: 128, c: 3, seed: 4, crc: 3953942133, crc13: 3953942133, picks: [(11, 85), (6436, 174), (12861, 161), (19286, 75), (25711, 125), (32136, 80), (38561, 82), (44986, 128)]),
        .init(w: 210, h: 160, ow: 128, oh: 128, c: 1, seed: 5, crc: 3436497479, crc13: 3436497479, picks: [(11, 104), (2902, 125), (5793, 171), (6436, 129), (9327, 128), (12218, 98), (12861, 72), (15752, 87)]),
        .init(w: 128, h: 100, ow: 128, oh: 128, c: 3, seed: 6, crc: 54443431, crc13: 54443431, picks: [(11, 211), (6436, 31), (12861, 188), (19286, 19), (25711, 33), (32136, 185), (38561, 47), (44986, 106)]),
        .init(w: 7, h: 5, ow: 3, oh: 9, c: 1, seed: 7, crc: 1579426855, crc13: 1579426855, picks: [(3, 103), (7, 173), (10, 173), (11, 139), (14, 48), (18, 127), (22, 136), (26, 165)], full: "6471b86787c16badd168ad8b62a5306f9a527f8f739a8892aa83a5"),
        .init(w: 160, h: 210, ow: 128, oh: 128, c: 3, seed: 0, crc: 3150160032, crc13: 252782443, picks: [(11, 114), (6436, 35), (12861, 158), (19286, 104), (25711, 27), (32136, 244), (38561, 97), (44986, 59)]),
        .init(w: 30, h: 90, ow: 20, oh: 25, c: 1, seed: 8, crc: 716464385, crc13: 2709073324, picks: [(11, 111), (114, 144), (156, 112), (198, 147), (240, 123), (385, 101), (427, 105), (469, 160)], full: "657aa37d6698877b616e9b6f638d57556e7976a1739ba48f6966918b82a08d6e817e5f3d8c8691706d8fa09196817d928584617a8198947997987b786c715f95968177628087813661747a7f9da27e7975867a98b875737c7d94796c767480796371735289748e988c9aa474835a71856385907d6064839280777686657c8f7785778395758c878d83756c87624989a483668f5d709a6d7a6d6b7f7b70746a6c7b66767c93878660908e8a8d646c7d8a67787868ba5f897f82817e797068829a6b6a93597397937eb59c9b9572836e5f715f808e77708d7a79888e645e787b706e64728684685d92977467745e6d81687b898b9e7a65958f827b68779e5f727765826b6bb87d7174637d8f84969d946e59719587599355748e776184849b829b898d8c676a83686b7b68759d7b7d877477948a7c5d6f89a0838378767b5686918886927c4e6e7d795f718b9f898788838e8c89866a8b9da37e6974a89faba1797070a088898f57617c8187a5996e66735665827774887b938a817d81866e72a886656e6659845a6a7f7a837b71716a78836f7e8776818481a0937265858b867286857b677d92898d85a09a697a877f8b786f797f92769a7281829a95b5ba8893816d565672797d7a8e7396985f6d99a58f99717b9ea082836d8b8b777766836790a96f73ac8c9b7f719e9b6f91698aa174819683"),
        .init(w: 50, h: 60, ow: 90, oh: 20, c: 3, seed: 9, crc: 772755033, crc13: 1402837626, picks: [(11, 121), (998, 137), (1985, 145), (2140, 129), (3127, 150), (4114, 119), (4269, 136), (5256, 160)]),
    ]
}
