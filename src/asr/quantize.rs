//! Weight types of a ggml Whisper file and ggml's block quantizers (q8_0, q5_0, q5_1),
//! bit for bit as whisper.cpp's own `quantize` tool writes them.
//!
//! whisper.cpp's `examples/quantize` (through `ggml_common_quantize_0`) quantizes every 2-D
//! tensor except the conv biases and the positional embeddings, leaves everything else as it
//! was (3-D conv weights f16, 1-D tensors f32), and stores the weight type in the header as
//! `GGML_QNT_VERSION * 1000 + ftype`. Its input is the f16 file, so each value goes through
//! f16 before it is quantized; [`WeightType::encode`] does the same, which makes a quantized
//! conversion byte-identical to whisper.cpp quantizing callgate's f16 file. The block
//! layouts and rounding are ggml-quants.c's `quantize_row_*_ref`.

use half::f16;

/// Values per quantization block, for every format here.
pub const BLOCK: usize = 32;
/// ggml's quantization format version (`GGML_QNT_VERSION`), part of a quantized header.
const QNT_VERSION: i32 = 2;
/// `GGML_QNT_VERSION_FACTOR`: the header stores `version * factor + ftype`.
const QNT_VERSION_FACTOR: i32 = 1000;

/// 2-D tensors whisper.cpp's quantizer leaves unquantized (its `to_skip` list).
const NEVER_QUANTIZED: &[&str] = &[
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
];

/// How a file's weight matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// 32-bit floats (ggml type 0); only ever a tensor's type here, not a file's.
    F32,
    /// Half precision, what the converter writes by default.
    F16,
    /// Blocks of 32: an f16 scale and 32 signed bytes (34 bytes).
    Q8_0,
    /// Blocks of 32: an f16 scale, 32 high bits, 32 low nibbles; values -16..15 (22 bytes).
    Q5_0,
    /// Blocks of 32: f16 scale and minimum, 32 high bits, 32 nibbles; 0..31 (24 bytes).
    Q5_1,
}

impl WeightType {
    /// The types `convert-model --quantize` accepts, by their whisper.cpp names.
    pub const QUANTIZED: [WeightType; 3] = [WeightType::Q8_0, WeightType::Q5_0, WeightType::Q5_1];

    /// whisper.cpp's name: `f32`, `f16`, `q8_0`, `q5_0`, `q5_1`.
    pub fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "f32",
            WeightType::F16 => "f16",
            WeightType::Q8_0 => "q8_0",
            WeightType::Q5_0 => "q5_0",
            WeightType::Q5_1 => "q5_1",
        }
    }

    /// Parses a name as [`WeightType::name`] prints it.
    pub fn parse(name: &str) -> Option<Self> {
        [WeightType::F32, WeightType::F16]
            .into_iter()
            .chain(Self::QUANTIZED)
            .find(|t| t.name() == name)
    }

    /// The `ggml_type` code a tensor entry stores.
    pub fn ggml_type(self) -> i32 {
        match self {
            WeightType::F32 => 0,
            WeightType::F16 => 1,
            WeightType::Q5_0 => 6,
            WeightType::Q5_1 => 7,
            WeightType::Q8_0 => 8,
        }
    }

    /// The type of a tensor entry's `ggml_type` code, if it is one of these.
    pub fn from_ggml_type(code: i32) -> Option<Self> {
        [WeightType::F32, WeightType::F16]
            .into_iter()
            .chain(Self::QUANTIZED)
            .find(|t| t.ggml_type() == code)
    }

    /// True for the block-quantized types.
    pub fn is_quantized(self) -> bool {
        !matches!(self, WeightType::F32 | WeightType::F16)
    }

    /// The header's `ftype` for a file whose weight matrices have this type.
    pub fn header_ftype(self) -> i32 {
        let ggml_ftype = match self {
            WeightType::F32 => return 0,
            WeightType::F16 => return 1,
            WeightType::Q8_0 => 7,
            WeightType::Q5_0 => 8,
            WeightType::Q5_1 => 9,
        };
        QNT_VERSION * QNT_VERSION_FACTOR + ggml_ftype
    }

    /// The weight type a header's `ftype` announces (any quantization version).
    pub fn from_header_ftype(ftype: i32) -> Option<Self> {
        let base = ftype % QNT_VERSION_FACTOR;
        [WeightType::F32, WeightType::F16]
            .into_iter()
            .chain(Self::QUANTIZED)
            .find(|t| t.header_ftype() % QNT_VERSION_FACTOR == base)
    }

    /// Bytes of `elements` values stored in this type (`None` when a quantized row would
    /// not fill whole blocks).
    pub fn bytes_for(self, elements: usize) -> Option<usize> {
        let per_block = match self {
            WeightType::F32 => return elements.checked_mul(4),
            WeightType::F16 => return elements.checked_mul(2),
            WeightType::Q8_0 => 34,
            WeightType::Q5_0 => 22,
            WeightType::Q5_1 => 24,
        };
        elements
            .is_multiple_of(BLOCK)
            .then(|| elements / BLOCK * per_block)
    }

    /// Appends `values` stored in this type. Quantized types round each value to f16 first
    /// (see the module docs) and need a multiple of [`BLOCK`] values.
    pub fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            WeightType::F32 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            WeightType::F16 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
            quantized => {
                for chunk in values.chunks_exact(BLOCK) {
                    let mut block = [0f32; BLOCK];
                    for (b, v) in block.iter_mut().zip(chunk) {
                        *b = f16::from_f32(*v).to_f32();
                    }
                    match quantized {
                        WeightType::Q8_0 => q8_0_block(&block, out),
                        WeightType::Q5_0 => q5_0_block(&block, out),
                        _ => q5_1_block(&block, out),
                    }
                }
            }
        }
    }

    /// Reads values stored in this type (the inverse of [`WeightType::encode`], up to the
    /// format's rounding). `bytes` must hold whole values or blocks.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        let half_at = |b: &[u8], i: usize| f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
        match self {
            WeightType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            WeightType::F16 => bytes.chunks_exact(2).map(|b| half_at(b, 0)).collect(),
            WeightType::Q8_0 => bytes
                .chunks_exact(34)
                .flat_map(|b| {
                    let d = half_at(b, 0);
                    b[2..].iter().map(move |&q| q as i8 as f32 * d)
                })
                .collect(),
            WeightType::Q5_0 => bytes
                .chunks_exact(22)
                .flat_map(|b| {
                    five_bit_values(&b[2..]).map(move |q| (q as f32 - 16.0) * half_at(b, 0))
                })
                .collect(),
            WeightType::Q5_1 => bytes
                .chunks_exact(24)
                .flat_map(|b| {
                    let (d, m) = (half_at(b, 0), half_at(b, 2));
                    five_bit_values(&b[4..]).map(move |q| q as f32 * d + m)
                })
                .collect(),
        }
    }
}

/// The type whisper.cpp's quantizer gives tensor `name` (of `n_dims` dimensions, stored
/// as `source`) in a file whose weight type is `weights`.
pub fn tensor_type(
    name: &str,
    n_dims: usize,
    source: WeightType,
    weights: WeightType,
) -> WeightType {
    let quantize = weights.is_quantized() && n_dims == 2 && !NEVER_QUANTIZED.contains(&name);
    if quantize { weights } else { source }
}

/// ggml's `quantize_row_q8_0_ref` for one block: scale = max |x| / 127, values rounded.
fn q8_0_block(x: &[f32; BLOCK], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

/// ggml's `quantize_row_q5_0_ref` for one block: the value of largest magnitude maps to
/// -16, so the scale carries its sign; the high bits of value j land in bit j of `qh`.
fn q5_0_block(x: &[f32; BLOCK], out: &mut Vec<u8>) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // `(int8_t)(x + 16.5f)` truncates; MIN(31, ..) clips the one value that can reach 32.
    let quant = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    pack_five_bit(x.map(quant), out);
}

/// ggml's `quantize_row_q5_1_ref` for one block: 32 levels from the block's minimum to its
/// maximum.
fn q5_1_block(x: &[f32; BLOCK], out: &mut Vec<u8>) {
    let min = x.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
    let max = x.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let quant = |v: f32| ((v - min) * id + 0.5) as u8;
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
    pack_five_bit(x.map(quant), out);
}

/// ggml's 5-bit packing: a little-endian u32 of fifth bits (value j at bit j), then 16
/// bytes whose low nibble is value j and high nibble value j + 16.
fn pack_five_bit(q: [u8; BLOCK], out: &mut Vec<u8>) {
    let half = BLOCK / 2;
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from((v & 0x10) >> 4) << j;
    }
    out.extend_from_slice(&qh.to_le_bytes());
    out.extend((0..half).map(|j| (q[j] & 0x0F) | ((q[j + half] & 0x0F) << 4)));
}

/// Unpacks [`pack_five_bit`]'s 20 bytes into the 32 values 0..31.
fn five_bit_values(packed: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let qh = u32::from_le_bytes([packed[0], packed[1], packed[2], packed[3]]);
    let qs = &packed[4..];
    (0..BLOCK).map(move |j| {
        let nibble = if j < BLOCK / 2 {
            qs[j] & 0x0F
        } else {
            qs[j - BLOCK / 2] >> 4
        };
        nibble | (((qh >> j) & 1) as u8) << 4
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random weights in (-scale, scale), with a few outliers, as
    /// trained weight rows have.
    fn weights(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..n)
            .map(|i| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 5 {
                    u * scale * 8.0
                } else {
                    u * scale
                }
            })
            .collect()
    }

    fn max_abs(x: &[f32]) -> f32 {
        x.iter().fold(0f32, |m, v| m.max(v.abs()))
    }

    /// Encodes and decodes `x`; returns the worst error per block with that block's values.
    fn round_trip(ty: WeightType, x: &[f32]) -> Vec<(f32, Vec<f32>)> {
        let mut bytes = Vec::new();
        ty.encode(x, &mut bytes);
        assert_eq!(Some(bytes.len()), ty.bytes_for(x.len()), "{}", ty.name());
        let back = ty.decode(&bytes);
        assert_eq!(back.len(), x.len());
        x.chunks(BLOCK)
            .zip(back.chunks(BLOCK))
            .map(|(a, b)| {
                let err = a.iter().zip(b).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                (err, a.to_vec())
            })
            .collect()
    }

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let x = weights(BLOCK * 64, 1, 0.05);
        for (err, block) in round_trip(WeightType::Q8_0, &x) {
            // Step amax/127; the f16 scale adds up to 127 * 2^-11 of a step.
            let step = max_abs(&block) / 127.0;
            assert!(
                err <= step * (0.5 + 127.0 / 2048.0) + 1e-7,
                "{err} > step {step}"
            );
        }
    }

    #[test]
    fn q5_0_round_trips_within_one_step() {
        let x = weights(BLOCK * 64, 2, 0.05);
        for (err, block) in round_trip(WeightType::Q5_0, &x) {
            // Step amax/16; half a step, except a value of the other sign at +amax, which
            // clips from level 32 to 31: one step.
            let step = max_abs(&block) / 16.0;
            assert!(
                err <= step * (1.0 + 16.0 / 2048.0) + 1e-7,
                "{err} > step {step}"
            );
        }
    }

    #[test]
    fn q5_1_round_trips_within_half_a_step() {
        let x: Vec<f32> = weights(BLOCK * 64, 3, 0.05)
            .iter()
            .map(|v| v + 0.02)
            .collect();
        for (err, block) in round_trip(WeightType::Q5_1, &x) {
            let min = block.iter().fold(f32::MAX, |m, &v| m.min(v));
            let max = block.iter().fold(f32::MIN, |m, &v| m.max(v));
            let step = (max - min) / 31.0;
            // Half a step, plus the f16 rounding of the scale (x31) and of the minimum.
            let bound = step * (0.5 + 31.0 / 2048.0) + min.abs() / 2048.0 + 1e-7;
            assert!(err <= bound, "{err} > {bound}");
        }
    }

    #[test]
    fn block_layouts_match_ggml() {
        // One q8_0 block of 0, 1, ..., 31: scale 31/127, byte j = round(j * 127 / 31).
        let x: Vec<f32> = (0..32).map(|j| j as f32).collect();
        let mut b = Vec::new();
        WeightType::Q8_0.encode(&x, &mut b);
        assert_eq!(b.len(), 34);
        assert_eq!(&b[..2], &f16::from_f32(31.0 / 127.0).to_le_bytes());
        assert_eq!((b[2], b[3], b[33]), (0, 4, 127));
        // q5_0 of -16..15: scale 1 (max -16 maps to -16), levels 0..31 as stored.
        let x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
        let mut b = Vec::new();
        WeightType::Q5_0.encode(&x, &mut b);
        assert_eq!(&b[..2], &f16::from_f32(1.0).to_le_bytes());
        // Values 16..31 have the fifth bit: qh = 0xFFFF0000; nibble pairs (j, j + 16).
        assert_eq!(&b[2..6], &0xFFFF_0000u32.to_le_bytes());
        assert_eq!((b[6], b[7], b[21]), (0x00, 0x11, 0xFF));
        // q5_1 stores the scale, then the minimum.
        let mut b = Vec::new();
        WeightType::Q5_1.encode(&x, &mut b);
        assert_eq!(
            &b[..4],
            &[
                f16::from_f32(1.0).to_le_bytes(),
                f16::from_f32(-16.0).to_le_bytes()
            ]
            .concat()
        );
        // A block of zeros has scale 0 and decodes to zeros.
        for ty in WeightType::QUANTIZED {
            let mut b = Vec::new();
            ty.encode(&[0.0; 32], &mut b);
            assert!(ty.decode(&b).iter().all(|v| *v == 0.0), "{}", ty.name());
        }
    }

    /// The strongest check: ggml's own quantizer (linked through whisper-rs-sys) produces
    /// the same bytes for the same f16-rounded values.
    #[test]
    fn quantized_bytes_equal_ggml_quantize_chunk() {
        let rows = 12;
        let per_row = BLOCK * 12;
        let x: Vec<f32> = weights(rows * per_row, 4, 0.08)
            .iter()
            .map(|v| f16::from_f32(*v).to_f32())
            .collect();
        for ty in WeightType::QUANTIZED {
            let mut ours = Vec::new();
            ty.encode(&x, &mut ours);
            let code = ty.ggml_type() as whisper_rs_sys::ggml_type;
            let mut theirs = vec![0u8; ours.len()];
            // SAFETY: `theirs` holds `rows` rows of `per_row` values in type `code` (the
            // same size as ours, checked below) and `x` holds rows * per_row floats; a null
            // importance matrix selects the reference quantizer these types allow.
            let written = unsafe {
                whisper_rs_sys::ggml_quantize_init(code);
                whisper_rs_sys::ggml_quantize_chunk(
                    code,
                    x.as_ptr(),
                    theirs.as_mut_ptr().cast(),
                    0,
                    rows as i64,
                    per_row as i64,
                    std::ptr::null(),
                )
            };
            assert_eq!(written, ours.len(), "{}", ty.name());
            assert!(ours == theirs, "{}: bytes differ from ggml's", ty.name());
        }
    }

    #[test]
    fn tensor_types_follow_whisper_cpp_quantize() {
        let q = WeightType::Q8_0;
        let f16 = WeightType::F16;
        let f32 = WeightType::F32;
        assert_eq!(tensor_type("encoder.blocks.0.mlp.0.weight", 2, f16, q), q);
        assert_eq!(tensor_type("decoder.token_embedding.weight", 2, f16, q), q);
        assert_eq!(tensor_type("encoder.conv1.weight", 3, f16, q), f16);
        assert_eq!(tensor_type("encoder.conv1.bias", 2, f32, q), f32);
        assert_eq!(tensor_type("decoder.positional_embedding", 2, f32, q), f32);
        assert_eq!(tensor_type("decoder.ln.weight", 1, f32, q), f32);
        assert_eq!(
            tensor_type("decoder.blocks.0.attn.query.weight", 2, f16, f16),
            f16
        );
    }

    #[test]
    fn header_ftype_carries_the_quantization_version() {
        assert_eq!(WeightType::F16.header_ftype(), 1);
        assert_eq!(WeightType::Q8_0.header_ftype(), 2007);
        assert_eq!(WeightType::Q5_0.header_ftype(), 2008);
        assert_eq!(WeightType::Q5_1.header_ftype(), 2009);
        assert_eq!(WeightType::from_header_ftype(2007), Some(WeightType::Q8_0));
        assert_eq!(WeightType::from_header_ftype(1009), Some(WeightType::Q5_1));
        assert_eq!(WeightType::from_header_ftype(1), Some(WeightType::F16));
        assert_eq!(WeightType::parse("q5_0"), Some(WeightType::Q5_0));
        assert_eq!(WeightType::parse("q4_0"), None);
        assert_eq!(WeightType::from_ggml_type(8), Some(WeightType::Q8_0));
        assert_eq!(WeightType::Q8_0.bytes_for(31), None);
    }
}
