//! The ggml Whisper file: writing tensor entries (f32, f16 or quantized), reading a file's
//! header and tensor table back, and re-quantizing an f16 file as whisper.cpp's `quantize`
//! tool does. The layout is whisper.cpp's loader's: magic, 11 hyper-parameters, the mel
//! filterbank, the ordinary tokens, then one entry per tensor (rank, name length, type,
//! dims innermost first, name, data).

use std::io::Write;
use std::path::Path;

use super::convert::{ConvertError, ConvertSummary, HyperParams, Reader};
use super::quantize::{self, WeightType};

/// Magic number at the start of a ggml file ("ggml" in hex).
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// A tensor ready to write: whisper.cpp name, dims outermost first, f32 values, and the
/// type an f16 file stores it in (f32 or f16).
pub(super) struct OutTensor {
    pub(super) name: String,
    pub(super) dims: Vec<usize>,
    pub(super) values: Vec<f32>,
    pub(super) source: WeightType,
}

/// f32 for the tensors `convert-pt-to-ggml.py` keeps f32, else f16.
pub(super) fn source_type(keep_f32: bool) -> WeightType {
    if keep_f32 {
        WeightType::F32
    } else {
        WeightType::F16
    }
}

/// One tensor in ggml's layout: dims, name length, type, dims (reversed), name, data; in
/// the type whisper.cpp gives it in a file of `weights` ([`quantize::tensor_type`]).
pub(super) fn write_tensor(
    w: &mut impl Write,
    t: &OutTensor,
    weights: WeightType,
) -> Result<(), ConvertError> {
    let ty = quantize::tensor_type(&t.name, t.dims.len(), t.source, weights);
    let row = t.dims.last().copied().unwrap_or(1);
    if ty.is_quantized() && !row.is_multiple_of(quantize::BLOCK) {
        return Err(ConvertError::Unsupported(format!(
            "{}: rows of {row} values do not split into {}-value {} blocks",
            t.name,
            quantize::BLOCK,
            ty.name()
        )));
    }
    let mut buf = Vec::with_capacity(t.values.len() * 2 + t.name.len() + 32);
    buf.extend_from_slice(&(t.dims.len() as i32).to_le_bytes());
    buf.extend_from_slice(&(t.name.len() as i32).to_le_bytes());
    buf.extend_from_slice(&ty.ggml_type().to_le_bytes());
    for d in t.dims.iter().rev() {
        buf.extend_from_slice(&(*d as i32).to_le_bytes());
    }
    buf.extend_from_slice(t.name.as_bytes());
    ty.encode(&t.values, &mut buf);
    w.write_all(&buf).map_err(|source| ConvertError::Io {
        path: "output".into(),
        source,
    })
}

/// Counts the bytes written through it, for the summary.
pub(super) struct CountingWriter<'a, W: Write> {
    pub(super) inner: &'a mut W,
    pub(super) bytes: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, ConvertError> {
    std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `out` through `write`, to a temporary file first so a failed run never leaves a
/// half-written model.
pub(super) fn write_atomically(
    out: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<ConvertSummary, ConvertError>,
) -> Result<ConvertSummary, ConvertError> {
    let tmp = out.with_extension("bin.partial");
    let io = |source| ConvertError::Io {
        path: tmp.display().to_string(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut writer = std::io::BufWriter::new(file);
    let written = write(&mut writer).and_then(|summary| {
        writer.flush().map_err(io)?;
        Ok(summary)
    });
    drop(writer);
    let summary = match written {
        Ok(summary) => summary,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).map_err(|source| ConvertError::Io {
        path: out.display().to_string(),
        source,
    })?;
    Ok(summary)
}

/// Rewrites the f16 (or f32) ggml file `input` to `out` with its weight matrices stored as
/// `weights`: whisper.cpp's `quantize` tool, for callgate's own files.
pub fn requantize_file(
    input: &Path,
    out: &Path,
    weights: WeightType,
) -> Result<ConvertSummary, ConvertError> {
    let bytes = read_file(input)?;
    write_atomically(out, |w| requantize(&bytes, weights, w))
}

/// Where the header's `ftype` sits: after the magic and ten hyper-parameters.
const FTYPE_OFFSET: usize = 4 + 10 * 4;

/// Rewrites a whole ggml file held in `bytes` into `out` with its weight matrices stored as
/// `weights`; header, filterbank and vocabulary are copied, the `ftype` set.
pub fn requantize(
    bytes: &[u8],
    weights: WeightType,
    out: &mut impl Write,
) -> Result<ConvertSummary, ConvertError> {
    let header = read_ggml(bytes)?;
    let source = WeightType::from_header_ftype(header.hparams.ftype);
    if !matches!(source, Some(WeightType::F16 | WeightType::F32)) {
        return Err(ConvertError::Unsupported(format!(
            "the input's weights are already {} (ftype {}): start from the f16 file",
            source.map_or("of an unknown type", WeightType::name),
            header.hparams.ftype
        )));
    }
    let hparams = HyperParams {
        ftype: weights.header_ftype(),
        ..header.hparams
    };
    let io = |source| ConvertError::Io {
        path: "output".into(),
        source,
    };
    let mut w = CountingWriter {
        inner: out,
        bytes: 0,
    };
    w.write_all(&bytes[..FTYPE_OFFSET]).map_err(io)?;
    w.write_all(&hparams.ftype.to_le_bytes()).map_err(io)?;
    w.write_all(&bytes[FTYPE_OFFSET + 4..header.tensors_offset])
        .map_err(io)?;
    for t in &header.tensors {
        let tensor = OutTensor {
            name: t.name.clone(),
            dims: t.dims.iter().rev().copied().collect(),
            values: t.ttype.decode(&bytes[t.data.clone()]),
            source: t.ttype,
        };
        write_tensor(&mut w, &tensor, weights)?;
    }
    w.flush().map_err(io)?;
    Ok(ConvertSummary {
        hparams,
        vocab_tokens: header.vocab_tokens,
        tensors: header.tensors.len(),
        bytes: w.bytes,
    })
}

/// One tensor of a ggml file, as its table entry describes it.
#[derive(Debug, Clone)]
pub struct GgmlTensor {
    /// whisper.cpp's name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// How its values are stored.
    pub ttype: WeightType,
    /// Dimensions as stored: innermost (row length) first.
    pub dims: Vec<usize>,
    /// Where its data lies in the file.
    pub data: std::ops::Range<usize>,
}

/// The header of a ggml Whisper file, read back for checks (`callgate model-info`, tests).
#[derive(Debug, Clone)]
pub struct GgmlHeader {
    /// Hyper-parameters.
    pub hparams: HyperParams,
    /// Mel bands in the stored filterbank.
    pub filter_mels: i32,
    /// FFT bins in the stored filterbank.
    pub filter_bins: i32,
    /// Ordinary tokens stored.
    pub vocab_tokens: usize,
    /// Where the first tensor entry begins.
    pub tensors_offset: usize,
    /// The tensors, in file order.
    pub tensors: Vec<GgmlTensor>,
}

impl GgmlHeader {
    /// The type tensor `name` is stored in, if the file has it.
    pub fn tensor_type(&self, name: &str) -> Option<WeightType> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.ttype)
    }
}

/// Reads a ggml Whisper file's header, vocabulary and tensor table.
pub fn read_ggml(bytes: &[u8]) -> Result<GgmlHeader, ConvertError> {
    let mut r = Reader { bytes, pos: 0 };
    let i32_ = |r: &mut Reader, what| r.u32(what).map(|v| v as i32);
    if r.u32("magic")? != GGML_MAGIC {
        return Err(ConvertError::Unsupported("bad ggml magic".into()));
    }
    let mut h = [0i32; 11];
    for v in h.iter_mut() {
        *v = i32_(&mut r, "hyper-parameter")?;
    }
    let hparams = HyperParams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
        ftype: h[10],
    };
    let filter_mels = i32_(&mut r, "filter rows")?;
    let filter_bins = i32_(&mut r, "filter columns")?;
    r.take(
        filter_mels.max(0) as usize * filter_bins.max(0) as usize * 4,
        "filters",
    )?;
    let n_tokens = r.u32("vocabulary size")? as usize;
    for _ in 0..n_tokens {
        let len = r.u32("token length")? as usize;
        r.take(len, "token")?;
    }
    let tensors_offset = r.pos;
    let mut tensors = Vec::new();
    while r.pos < bytes.len() {
        tensors.push(read_tensor_entry(&mut r)?);
    }
    Ok(GgmlHeader {
        hparams,
        filter_mels,
        filter_bins,
        vocab_tokens: n_tokens,
        tensors_offset,
        tensors,
    })
}

fn read_tensor_entry(r: &mut Reader) -> Result<GgmlTensor, ConvertError> {
    let n_dims = r.u32("tensor rank")? as usize;
    let name_len = r.u32("tensor name length")? as usize;
    let code = r.u32("tensor type")? as i32;
    if n_dims > 4 {
        return Err(ConvertError::Unsupported(format!(
            "a tensor of rank {n_dims} (ggml has at most 4)"
        )));
    }
    let dims = (0..n_dims)
        .map(|_| r.u32("tensor dim").map(|d| d as usize))
        .collect::<Result<Vec<_>, _>>()?;
    let name = String::from_utf8_lossy(r.take(name_len, "tensor name")?).into_owned();
    let ttype = WeightType::from_ggml_type(code)
        .ok_or_else(|| ConvertError::Unsupported(format!("{name}: unknown tensor type {code}")))?;
    let elements = dims.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
    let size = elements.and_then(|n| ttype.bytes_for(n)).ok_or_else(|| {
        ConvertError::Unsupported(format!(
            "{name}: shape {dims:?} does not fit {}",
            ttype.name()
        ))
    })?;
    let start = r.pos;
    r.take(size, "tensor data")?;
    Ok(GgmlTensor {
        name,
        ttype,
        dims,
        data: start..r.pos,
    })
}
