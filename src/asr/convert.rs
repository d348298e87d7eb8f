//! Converts a CTranslate2 (faster-whisper) Whisper model into whisper.cpp's ggml file.
//!
//! No ggml Whisper file can be downloaded here; the only Whisper weights a package registry
//! ships are CTranslate2 conversions. This module reads that `model.bin` (plus its
//! `vocabulary.txt`) and writes exactly what whisper.cpp's loader expects: the header of 11
//! hyper-parameters, the Slaney mel filterbank, the ordinary BPE tokens as raw bytes, then the
//! tensors under whisper.cpp's names. The rules mirror whisper.cpp's own
//! `convert-pt-to-ggml.py`: 1-D tensors, conv biases and positional embeddings stay f32, every
//! other tensor is f16; dims are written innermost first. Asked for a quantized weight type,
//! it quantizes the weight matrices as whisper.cpp's `quantize` tool would ([`super::quantize`]);
//! [`super::ggml::requantize`] does the same to an f16 ggml file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use half::f16;

use super::ggml::{
    CountingWriter, GGML_MAGIC, OutTensor, read_file, source_type, write_atomically, write_tensor,
};
use super::quantize::WeightType;

/// Number of frequency bins of Whisper's 400-point FFT.
const N_FFT_BINS: usize = 201;
/// Whisper's audio sample rate.
const SAMPLE_RATE: f64 = 16_000.0;

/// Why a conversion failed. Each variant says what was wrong with which input.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The CTranslate2 file ended before the structure it announced.
    #[error(
        "model.bin is truncated or corrupt: {what} at byte {offset} runs past the end ({len} bytes)"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it started.
        offset: usize,
        /// The file's length.
        len: usize,
    },
    /// The file is readable but is not a Whisper model this converter understands.
    #[error("model.bin is not a supported CTranslate2 Whisper model: {0}")]
    Unsupported(String),
    /// The vocabulary file does not match the model.
    #[error("vocabulary.txt: {0}")]
    Vocabulary(String),
}

/// One variable of a CTranslate2 model.
#[derive(Debug, Clone)]
pub struct Ct2Variable {
    /// Shape, outermost first (as PyTorch stores it).
    pub dims: Vec<usize>,
    /// CTranslate2 dtype code: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16.
    pub dtype: u8,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

/// A parsed CTranslate2 `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    /// The spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Variables by name, aliases resolved.
    pub variables: HashMap<String, Ct2Variable>,
}

/// A bounds-checked little-endian reader over a model file (CTranslate2 or ggml).
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ConvertError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(ConvertError::Truncated {
                what,
                offset: self.pos,
                len: self.bytes.len(),
            });
        };
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, ConvertError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, ConvertError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, ConvertError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A CTranslate2 string: u16 length including a trailing NUL, then the bytes.
    fn string(&mut self, what: &'static str) -> Result<String, ConvertError> {
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec())
            .map_err(|_| ConvertError::Unsupported(format!("{what} is not UTF-8")))
    }
}

impl Ct2Model {
    /// Parses a CTranslate2 model from its bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConvertError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u32("format version")?;
        if !(5..=6).contains(&version) {
            return Err(ConvertError::Unsupported(format!(
                "format version {version} (expected 5 or 6)"
            )));
        }
        let spec = r.string("spec name")?;
        if spec != "WhisperSpec" {
            return Err(ConvertError::Unsupported(format!(
                "spec is {spec:?}, not WhisperSpec"
            )));
        }
        let _revision = r.u32("spec revision")?;
        let count = r.u32("variable count")?;
        let mut variables = HashMap::new();
        for _ in 0..count {
            let name = r.string("variable name")?;
            let ndim = r.u8("rank")? as usize;
            let mut dims = Vec::with_capacity(ndim);
            for _ in 0..ndim {
                dims.push(r.u32("dimension")? as usize);
            }
            let dtype = r.u8("dtype")?;
            let nbytes = r.u32("data size")? as usize;
            let data = r.take(nbytes, "tensor data")?.to_vec();
            let elem = dtype_size(dtype).ok_or_else(|| {
                ConvertError::Unsupported(format!("{name}: unknown dtype {dtype}"))
            })?;
            let expected = dims.iter().product::<usize>() * elem;
            if expected != nbytes {
                return Err(ConvertError::Unsupported(format!(
                    "{name}: shape {dims:?} needs {expected} bytes, file has {nbytes}"
                )));
            }
            variables.insert(name, Ct2Variable { dims, dtype, data });
        }
        let aliases = r.u32("alias count")?;
        for _ in 0..aliases {
            let alias = r.string("alias")?;
            let target = r.string("alias target")?;
            if let Some(v) = variables.get(&target).cloned() {
                variables.insert(alias, v);
            }
        }
        Ok(Self { spec, variables })
    }

    fn var(&self, name: &str) -> Result<&Ct2Variable, ConvertError> {
        self.variables
            .get(name)
            .ok_or_else(|| ConvertError::Unsupported(format!("missing variable {name}")))
    }

    fn scalar_i16(&self, name: &str) -> Result<i32, ConvertError> {
        let v = self.var(name)?;
        match (v.dtype, v.data.as_slice()) {
            (2, [a, b]) => Ok(i16::from_le_bytes([*a, *b]) as i32),
            (3, [a, b, c, d]) => Ok(i32::from_le_bytes([*a, *b, *c, *d])),
            _ => Err(ConvertError::Unsupported(format!(
                "{name} is not an integer scalar"
            ))),
        }
    }

    fn layer_count(&self, prefix: &str) -> usize {
        // `layer_norm` also starts with `layer_`: count only numbered layers.
        (0..)
            .take_while(|i| {
                let p = format!("{prefix}/layer_{i}/");
                self.variables.keys().any(|k| k.starts_with(&p))
            })
            .count()
    }
}

fn dtype_size(dtype: u8) -> Option<usize> {
    match dtype {
        0 | 3 => Some(4),
        1 => Some(1),
        2 | 4 | 5 => Some(2),
        _ => None,
    }
}

/// Whisper's hyper-parameters, in the order of the ggml header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HyperParams {
    /// Vocabulary size including special tokens.
    pub n_vocab: i32,
    /// Encoder positions (1500 for a 30 s window).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions.
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands.
    pub n_mels: i32,
    /// Weight type: 1 = f16, 2000 + ggml's ftype when quantized ([`WeightType::header_ftype`]).
    pub ftype: i32,
}

impl HyperParams {
    fn as_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

/// What a conversion produced, for logs and tests.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// The header written.
    pub hparams: HyperParams,
    /// Ordinary tokens written (whisper.cpp adds the special ones itself).
    pub vocab_tokens: usize,
    /// Tensors written.
    pub tensors: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// GPT-2's reversible byte <-> printable-unicode table, inverted: vocabulary.txt spells each
/// token's bytes through it, and whisper.cpp wants the raw bytes.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, b as u8)))
        .collect()
}

/// Reads vocabulary.txt: the ordinary tokens before `<|endoftext|>`, as raw bytes.
pub fn read_vocabulary(text: &str) -> Result<Vec<Vec<u8>>, ConvertError> {
    let table = unicode_to_byte();
    let mut tokens = Vec::new();
    // Split on '\n' only: the multilingual vocabulary has one empty token line.
    for (line_no, line) in text.split('\n').enumerate() {
        if line == "<|endoftext|>" {
            return Ok(tokens);
        }
        let bytes = line
            .chars()
            .map(|c| table.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                ConvertError::Vocabulary(format!(
                    "line {} has a character outside GPT-2's byte alphabet",
                    line_no + 1
                ))
            })?;
        tokens.push(bytes);
    }
    Err(ConvertError::Vocabulary(
        "no <|endoftext|> token: not a Whisper vocabulary".into(),
    ))
}

/// The Slaney-style mel filterbank Whisper was trained with (librosa's
/// `filters.mel(sr=16000, n_fft=400, n_mels)`), row-major `[n_mels][201]`.
pub fn mel_filterbank(n_mels: usize) -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ {
            min_log_mel + (f / MIN_LOG_HZ).ln() / logstep
        } else {
            f / F_SP
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            MIN_LOG_HZ * (logstep * (m - min_log_mel)).exp()
        } else {
            m * F_SP
        }
    };
    let nyquist = SAMPLE_RATE / 2.0;
    let max_mel = hz_to_mel(nyquist);
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64))
        .collect();
    let fft_freqs: Vec<f64> = (0..N_FFT_BINS)
        .map(|j| nyquist * j as f64 / (N_FFT_BINS - 1) as f64)
        .collect();
    let mut out = Vec::with_capacity(n_mels * N_FFT_BINS);
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for &f in &fft_freqs {
            let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
            let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
            out.push((lower.min(upper).max(0.0) * enorm) as f32);
        }
    }
    out
}

fn to_f32(v: &Ct2Variable, name: &str) -> Result<Vec<f32>, ConvertError> {
    match v.dtype {
        0 => Ok(v
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()),
        4 => Ok(v
            .data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()),
        5 => Ok(v
            .data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()),
        d => Err(ConvertError::Unsupported(format!(
            "{name}: dtype {d} is not a float (quantized models are not supported)"
        ))),
    }
}

struct Builder<'a> {
    model: &'a Ct2Model,
    out: Vec<OutTensor>,
}

impl Builder<'_> {
    fn load(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ConvertError> {
        let v = self.model.var(name)?;
        Ok((v.dims.clone(), to_f32(v, name)?))
    }

    fn push(&mut self, name: String, dims: Vec<usize>, values: Vec<f32>) {
        // convert-pt-to-ggml.py keeps 1-D tensors f32; whisper.cpp creates them f32.
        let source = source_type(dims.len() < 2);
        self.out.push(OutTensor {
            name,
            dims,
            values,
            source,
        });
    }

    fn copy(&mut self, from: &str, to: String) -> Result<(), ConvertError> {
        let (dims, values) = self.load(from)?;
        self.push(to, dims, values);
        Ok(())
    }

    fn layer_norm(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{from}/gamma"), format!("{to}.weight"))?;
        self.copy(&format!("{from}/beta"), format!("{to}.bias"))
    }

    fn linear(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{from}/weight"), format!("{to}.weight"))?;
        self.copy(&format!("{from}/bias"), format!("{to}.bias"))
    }

    /// Splits a fused projection by rows into `parts` targets. Whisper's key projection has
    /// no bias (CTranslate2 stores zeros there), so a target named `*.key` gets no bias.
    fn split_linear(&mut self, from: &str, targets: &[&str]) -> Result<(), ConvertError> {
        let (wdims, w) = self.load(&format!("{from}/weight"))?;
        let (_, b) = self.load(&format!("{from}/bias"))?;
        let parts = targets.len();
        if wdims.len() != 2 || wdims[0] % parts != 0 || b.len() != wdims[0] {
            return Err(ConvertError::Unsupported(format!(
                "{from}: fused shape {wdims:?} does not split into {parts}"
            )));
        }
        let rows = wdims[0] / parts;
        let cols = wdims[1];
        for (i, to) in targets.iter().enumerate() {
            let w_part = w[i * rows * cols..(i + 1) * rows * cols].to_vec();
            self.push(format!("{to}.weight"), vec![rows, cols], w_part);
            if !to.ends_with(".key") {
                let b_part = b[i * rows..(i + 1) * rows].to_vec();
                self.push(format!("{to}.bias"), vec![rows], b_part);
            }
        }
        Ok(())
    }

    fn conv(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{from}/weight"), format!("{to}.weight"))?;
        let (dims, values) = self.load(&format!("{from}/bias"))?;
        // whisper.cpp wants conv biases as [n, 1], in f32.
        self.out.push(OutTensor {
            name: format!("{to}.bias"),
            dims: vec![dims.iter().product(), 1],
            values,
            source: WeightType::F32,
        });
        Ok(())
    }

    fn positional(&mut self, from: &str, to: &str) -> Result<(), ConvertError> {
        let (dims, values) = self.load(from)?;
        self.out.push(OutTensor {
            name: to.to_string(),
            dims,
            values,
            source: WeightType::F32,
        });
        Ok(())
    }

    fn block(&mut self, from: &str, to: &str, cross: bool) -> Result<(), ConvertError> {
        self.layer_norm(
            &format!("{from}/self_attention/layer_norm"),
            &format!("{to}.attn_ln"),
        )?;
        self.split_linear(
            &format!("{from}/self_attention/linear_0"),
            &[
                &format!("{to}.attn.query"),
                &format!("{to}.attn.key"),
                &format!("{to}.attn.value"),
            ],
        )?;
        self.linear(
            &format!("{from}/self_attention/linear_1"),
            &format!("{to}.attn.out"),
        )?;
        if cross {
            self.layer_norm(
                &format!("{from}/attention/layer_norm"),
                &format!("{to}.cross_attn_ln"),
            )?;
            self.linear(
                &format!("{from}/attention/linear_0"),
                &format!("{to}.cross_attn.query"),
            )?;
            self.split_linear(
                &format!("{from}/attention/linear_1"),
                &[
                    &format!("{to}.cross_attn.key"),
                    &format!("{to}.cross_attn.value"),
                ],
            )?;
            self.linear(
                &format!("{from}/attention/linear_2"),
                &format!("{to}.cross_attn.out"),
            )?;
        }
        self.layer_norm(&format!("{from}/ffn/layer_norm"), &format!("{to}.mlp_ln"))?;
        self.linear(&format!("{from}/ffn/linear_0"), &format!("{to}.mlp.0"))?;
        self.linear(&format!("{from}/ffn/linear_1"), &format!("{to}.mlp.2"))
    }
}

fn hyper_params(model: &Ct2Model, weights: WeightType) -> Result<HyperParams, ConvertError> {
    let dims2 = |name: &str| -> Result<(i32, i32), ConvertError> {
        let v = model.var(name)?;
        match v.dims.as_slice() {
            [a, b] => Ok((*a as i32, *b as i32)),
            d => Err(ConvertError::Unsupported(format!("{name} has shape {d:?}"))),
        }
    };
    let (n_vocab, _) = dims2("decoder/embeddings/weight")?;
    let (n_audio_ctx, n_audio_state) = dims2("encoder/position_encodings/encodings")?;
    let (n_text_ctx, n_text_state) = dims2("decoder/position_encodings/encodings")?;
    let conv1 = model.var("encoder/conv1/weight")?;
    let n_mels = *conv1
        .dims
        .get(1)
        .ok_or_else(|| ConvertError::Unsupported("encoder/conv1/weight is not 3-D".into()))?
        as i32;
    let hp = HyperParams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head: model.scalar_i16("encoder/num_heads")?,
        n_audio_layer: model.layer_count("encoder") as i32,
        n_text_ctx,
        n_text_state,
        n_text_head: model.scalar_i16("decoder/num_heads")?,
        n_text_layer: model.layer_count("decoder") as i32,
        n_mels,
        ftype: weights.header_ftype(),
    };
    if hp.n_audio_state != hp.n_text_state || hp.n_audio_layer == 0 || hp.n_text_layer == 0 {
        return Err(ConvertError::Unsupported(format!(
            "inconsistent hyper-parameters {hp:?}"
        )));
    }
    Ok(hp)
}

/// Converts parsed CTranslate2 weights plus vocabulary text to a ggml file in `out`, its
/// weight matrices stored as `weights` (f16, or a quantized type).
pub fn convert(
    model: &Ct2Model,
    vocabulary: &str,
    weights: WeightType,
    out: &mut impl Write,
) -> Result<ConvertSummary, ConvertError> {
    let hparams = hyper_params(model, weights)?;
    let tokens = read_vocabulary(vocabulary)?;
    if tokens.len() >= hparams.n_vocab as usize {
        return Err(ConvertError::Vocabulary(format!(
            "{} ordinary tokens but the model has only {} embeddings",
            tokens.len(),
            hparams.n_vocab
        )));
    }

    let mut b = Builder {
        model,
        out: Vec::new(),
    };
    b.positional(
        "encoder/position_encodings/encodings",
        "encoder.positional_embedding",
    )?;
    b.conv("encoder/conv1", "encoder.conv1")?;
    b.conv("encoder/conv2", "encoder.conv2")?;
    for i in 0..hparams.n_audio_layer {
        b.block(
            &format!("encoder/layer_{i}"),
            &format!("encoder.blocks.{i}"),
            false,
        )?;
    }
    b.layer_norm("encoder/layer_norm", "encoder.ln_post")?;
    b.positional(
        "decoder/position_encodings/encodings",
        "decoder.positional_embedding",
    )?;
    b.copy(
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight".into(),
    )?;
    for i in 0..hparams.n_text_layer {
        b.block(
            &format!("decoder/layer_{i}"),
            &format!("decoder.blocks.{i}"),
            true,
        )?;
    }
    b.layer_norm("decoder/layer_norm", "decoder.ln")?;

    let mut w = CountingWriter {
        inner: out,
        bytes: 0,
    };
    let io = |e| ConvertError::Io {
        path: "output".into(),
        source: e,
    };
    w.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    for v in hparams.as_array() {
        w.write_all(&v.to_le_bytes()).map_err(io)?;
    }
    let n_mels = hparams.n_mels as usize;
    w.write_all(&(n_mels as i32).to_le_bytes()).map_err(io)?;
    w.write_all(&(N_FFT_BINS as i32).to_le_bytes())
        .map_err(io)?;
    for f in mel_filterbank(n_mels) {
        w.write_all(&f.to_le_bytes()).map_err(io)?;
    }
    w.write_all(&(tokens.len() as i32).to_le_bytes())
        .map_err(io)?;
    for t in &tokens {
        w.write_all(&(t.len() as i32).to_le_bytes()).map_err(io)?;
        w.write_all(t).map_err(io)?;
    }
    for t in &b.out {
        write_tensor(&mut w, t, weights)?;
    }
    w.flush().map_err(io)?;
    Ok(ConvertSummary {
        hparams,
        vocab_tokens: tokens.len(),
        tensors: b.out.len(),
        bytes: w.bytes,
    })
}

/// Converts the CTranslate2 model folder `ct2_dir` (model.bin + vocabulary.txt) to `out`,
/// its weight matrices stored as `weights`.
pub fn convert_dir(
    ct2_dir: &Path,
    out: &Path,
    weights: WeightType,
) -> Result<ConvertSummary, ConvertError> {
    let model_bytes = read_file(&ct2_dir.join("model.bin"))?;
    let vocab_bytes = read_file(&ct2_dir.join("vocabulary.txt"))?;
    let vocab =
        String::from_utf8(vocab_bytes).map_err(|_| ConvertError::Vocabulary("not UTF-8".into()))?;
    let model = Ct2Model::parse(&model_bytes)?;
    drop(model_bytes);
    write_atomically(out, |w| convert(&model, &vocab, weights, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::ggml::{GgmlHeader, read_ggml, requantize};

    /// Writes a CTranslate2 file in the on-disk format, for a model small enough to build
    /// in a test: it exercises every mapping rule without the 75 MB real model.
    fn ct2_bytes(vars: &[(&str, Vec<usize>, u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend_from_slice(&((v.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        s(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, dims, dtype, data) in vars {
            s(&mut out, name);
            out.push(dims.len() as u8);
            for d in dims {
                out.extend_from_slice(&(*d as u32).to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            s(&mut out, a);
            s(&mut out, t);
        }
        out
    }

    fn f16s(dims: &[usize], fill: f32) -> Vec<u8> {
        let n: usize = dims.iter().product();
        (0..n)
            .flat_map(|i| f16::from_f32(fill + i as f32 * 1e-3).to_le_bytes())
            .collect()
    }

    /// A 1-layer Whisper with width 4, 2 heads, 3 mels and a vocabulary of 6 embeddings.
    fn tiny_model() -> Vec<u8> {
        model_of_width(4)
    }

    /// [`tiny_model`] with width `d` (32 makes every weight row fill whole quant blocks).
    fn model_of_width(d: usize) -> Vec<u8> {
        let mut vars: Vec<(String, Vec<usize>, u8, Vec<u8>)> = Vec::new();
        let mut add = |name: String, dims: Vec<usize>| {
            let data = f16s(&dims, 0.5);
            vars.push((name, dims, 4, data));
        };
        add("encoder/conv1/weight".into(), vec![d, 3, 3]);
        add("encoder/conv1/bias".into(), vec![d]);
        add("encoder/conv2/weight".into(), vec![d, d, 3]);
        add("encoder/conv2/bias".into(), vec![d]);
        add("encoder/position_encodings/encodings".into(), vec![10, d]);
        add("decoder/position_encodings/encodings".into(), vec![8, d]);
        add("decoder/embeddings/weight".into(), vec![6, d]);
        for side in ["encoder", "decoder"] {
            add(format!("{side}/layer_norm/gamma"), vec![d]);
            add(format!("{side}/layer_norm/beta"), vec![d]);
            let p = format!("{side}/layer_0");
            for ln in ["self_attention/layer_norm", "ffn/layer_norm"] {
                add(format!("{p}/{ln}/gamma"), vec![d]);
                add(format!("{p}/{ln}/beta"), vec![d]);
            }
            add(
                format!("{p}/self_attention/linear_0/weight"),
                vec![3 * d, d],
            );
            add(format!("{p}/self_attention/linear_0/bias"), vec![3 * d]);
            add(format!("{p}/self_attention/linear_1/weight"), vec![d, d]);
            add(format!("{p}/self_attention/linear_1/bias"), vec![d]);
            add(format!("{p}/ffn/linear_0/weight"), vec![4 * d, d]);
            add(format!("{p}/ffn/linear_0/bias"), vec![4 * d]);
            add(format!("{p}/ffn/linear_1/weight"), vec![d, 4 * d]);
            add(format!("{p}/ffn/linear_1/bias"), vec![d]);
        }
        let p = "decoder/layer_0/attention";
        add(format!("{p}/layer_norm/gamma"), vec![d]);
        add(format!("{p}/layer_norm/beta"), vec![d]);
        add(format!("{p}/linear_0/weight"), vec![d, d]);
        add(format!("{p}/linear_0/bias"), vec![d]);
        add(format!("{p}/linear_1/weight"), vec![2 * d, d]);
        add(format!("{p}/linear_1/bias"), vec![2 * d]);
        add(format!("{p}/linear_2/weight"), vec![d, d]);
        add(format!("{p}/linear_2/bias"), vec![d]);
        vars.push((
            "encoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        vars.push((
            "decoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        let refs: Vec<(&str, Vec<usize>, u8, Vec<u8>)> = vars
            .iter()
            .map(|(n, d, t, b)| (n.as_str(), d.clone(), *t, b.clone()))
            .collect();
        ct2_bytes(
            &refs,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    const VOCAB: &str = "a\nb\n\u{120}the\n<|endoftext|>\n<|startoftranscript|>\n";

    #[test]
    fn converts_a_small_model_with_every_mapping_rule() {
        let model = Ct2Model::parse(&tiny_model()).expect("parse");
        let mut out = Vec::new();
        let summary = convert(&model, VOCAB, WeightType::F16, &mut out).expect("convert");
        assert_eq!(summary.vocab_tokens, 3);
        // encoder 7 + 15 per layer, decoder 4 + 24 per layer
        assert_eq!(summary.tensors, 7 + 15 + 4 + 24);
        let h = read_ggml(&out).expect("read back");
        assert_eq!(h.hparams.n_vocab, 6);
        assert_eq!(h.hparams.n_audio_layer, 1);
        assert_eq!(h.hparams.n_audio_head, 2);
        assert_eq!(h.hparams.n_mels, 3);
        assert_eq!((h.filter_mels, h.filter_bins), (3, 201));
        assert_eq!(h.tensors.len(), summary.tensors);
        let ty = |n: &str| h.tensor_type(n).map(WeightType::ggml_type);
        assert_eq!(ty("encoder.conv1.bias"), Some(0));
        assert_eq!(ty("encoder.positional_embedding"), Some(0));
        assert_eq!(ty("encoder.blocks.0.attn.query.weight"), Some(1));
        assert_eq!(ty("encoder.blocks.0.attn.query.bias"), Some(0));
        assert_eq!(ty("encoder.blocks.0.attn.key.bias"), None);
        assert_eq!(ty("decoder.blocks.0.cross_attn.key.weight"), Some(1));
        assert_eq!(ty("decoder.blocks.0.cross_attn.value.bias"), Some(0));
        assert_eq!(ty("decoder.ln.weight"), Some(0));
    }

    #[test]
    fn quantized_conversion_equals_requantizing_the_f16_file() {
        let model = Ct2Model::parse(&model_of_width(32)).expect("parse");
        let mut f16_file = Vec::new();
        convert(&model, VOCAB, WeightType::F16, &mut f16_file).expect("f16");
        for weights in WeightType::QUANTIZED {
            let mut direct = Vec::new();
            let summary = convert(&model, VOCAB, weights, &mut direct).expect("quantized");
            let mut from_f16 = Vec::new();
            requantize(&f16_file, weights, &mut from_f16).expect("requantize");
            assert!(
                direct == from_f16,
                "{}: the two paths differ",
                weights.name()
            );
            assert_eq!(summary.bytes, direct.len() as u64);
            let h = read_ggml(&direct).expect("read back");
            assert_eq!(h.hparams.ftype, weights.header_ftype());
            assert_eq!(h.tensors.len(), summary.tensors);
            let ty = |n: &str| h.tensor_type(n);
            // whisper.cpp's rules: 2-D weights quantized, conv weights f16, the rest f32.
            assert_eq!(ty("encoder.blocks.0.mlp.0.weight"), Some(weights));
            assert_eq!(ty("decoder.token_embedding.weight"), Some(weights));
            assert_eq!(ty("encoder.conv2.weight"), Some(WeightType::F16));
            assert_eq!(ty("encoder.conv1.bias"), Some(WeightType::F32));
            assert_eq!(ty("decoder.positional_embedding"), Some(WeightType::F32));
            assert_eq!(ty("decoder.blocks.0.mlp_ln.bias"), Some(WeightType::F32));
            // The unquantized tensors are the f16 file's, byte for byte.
            let f16_header = read_ggml(&f16_file).expect("read f16");
            let data = |file: &[u8], h: &GgmlHeader, n: &str| {
                let t = h.tensors.iter().find(|t| t.name == n).expect(n);
                file[t.data.clone()].to_vec()
            };
            for n in [
                "encoder.conv1.weight",
                "decoder.ln.weight",
                "encoder.conv1.bias",
            ] {
                assert_eq!(data(&direct, &h, n), data(&f16_file, &f16_header, n), "{n}");
            }
        }
        let err = requantize(
            &{
                let mut q = Vec::new();
                requantize(&f16_file, WeightType::Q8_0, &mut q).expect("q8_0");
                q
            },
            WeightType::Q5_0,
            &mut Vec::new(),
        )
        .expect_err("already quantized");
        assert!(err.to_string().contains("already q8_0"), "{err}");
    }

    #[test]
    fn quantizing_rows_that_do_not_fill_blocks_is_refused() {
        let model = Ct2Model::parse(&tiny_model()).expect("parse");
        let err = convert(&model, VOCAB, WeightType::Q8_0, &mut Vec::new()).expect_err("width 4");
        assert!(err.to_string().contains("32-value q8_0 blocks"), "{err}");
    }

    #[test]
    fn vocabulary_decodes_gpt2_byte_alphabet() {
        let tokens = read_vocabulary(VOCAB).expect("vocab");
        assert_eq!(tokens[2], b" the");
        let err = read_vocabulary("a\nb\n").expect_err("no eot");
        assert!(err.to_string().contains("endoftext"));
    }

    #[test]
    fn truncated_model_gives_a_clear_error() {
        let bytes = tiny_model();
        for cut in [3, 20, bytes.len() / 2, bytes.len() - 5] {
            let err = Ct2Model::parse(&bytes[..cut]).expect_err("truncated");
            let msg = err.to_string();
            assert!(msg.contains("truncated"), "{msg}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = 99;
        assert!(
            Ct2Model::parse(&wrong)
                .expect_err("version")
                .to_string()
                .contains("version")
        );
    }

    #[test]
    fn missing_tensor_is_named() {
        let model = Ct2Model::parse(&tiny_model()).expect("parse");
        let mut model = model;
        model
            .variables
            .remove("decoder/layer_0/attention/linear_1/weight");
        let err = convert(&model, VOCAB, WeightType::F16, &mut Vec::new()).expect_err("missing");
        assert!(
            err.to_string().contains("attention/linear_1/weight"),
            "{err}"
        );
    }

    #[test]
    fn mel_filterbank_matches_librosa_slaney() {
        let f = mel_filterbank(80);
        assert_eq!(f.len(), 80 * 201);
        // Reference values from openai-whisper's assets/mel_filters.npz (mel_80).
        for (row, col, want) in [
            (0, 1, 0.024_862_595f32),
            (10, 10, 0.019_908_218),
            (40, 43, 0.014_735_566),
            (79, 192, 0.003_164_712),
        ] {
            let got = f[row * 201 + col];
            assert!(
                (got - want).abs() < 1e-6,
                "[{row}][{col}] = {got}, want {want}"
            );
        }
        assert!(f[0].abs() < 1e-9);
    }
}
