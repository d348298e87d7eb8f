//! Sample-rate conversion with rubato: whole clips, and a streaming converter for calls.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Why a resampler could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// The rates are out of range or the resampler rejected them.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Construction {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// rubato's explanation.
        reason: String,
    },
    /// rubato failed while processing.
    #[error("resampling failed: {0}")]
    Process(String),
}

fn build(from: u32, to: u32, chunk: usize) -> Result<Fft<f32>, ResampleError> {
    Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input).map_err(|e| {
        ResampleError::Construction {
            from,
            to,
            reason: e.to_string(),
        }
    })
}

/// Resamples a whole mono clip, trimming the resampler's start-up delay.
pub fn resample_all(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut resampler = build(from, to, 1024)?;
    let needed = resampler.process_all_needed_output_len(samples.len());
    let mut out = vec![0.0f32; needed];
    let input = InterleavedSlice::new(samples, 1, samples.len())
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let mut output = InterleavedSlice::new_mut(&mut out, 1, needed)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let (_, produced) = resampler
        .process_all_into_buffer(&input, &mut output, samples.len(), None)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    out.truncate(produced);
    Ok(out)
}

/// A streaming mono resampler for a call's input or output: push any number of samples,
/// get whatever output is ready. Works in 10 ms input blocks so latency stays low.
pub struct StreamResampler {
    /// `None` when the rates are equal: samples pass straight through.
    inner: Option<Fft<f32>>,
    /// Input not yet consumed (less than one block).
    pending: Vec<f32>,
    /// Output samples still owed to the start-up delay, dropped so timing stays aligned.
    delay_left: usize,
    out_buf: Vec<f32>,
    /// Samples pushed and emitted so far, so `flush` can emit exactly the right length.
    total_in: u64,
    total_out: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        if from == to {
            return Ok(Self {
                inner: None,
                pending: Vec::new(),
                delay_left: 0,
                out_buf: Vec::new(),
                total_in: 0,
                total_out: 0,
            });
        }
        let block = (from as usize / 100).max(1);
        let inner = build(from, to, block)?;
        let delay_left = inner.output_delay();
        let out_buf = vec![0.0; inner.output_frames_max()];
        Ok(Self {
            inner: Some(inner),
            pending: Vec::with_capacity(block * 2),
            delay_left,
            out_buf,
            total_in: 0,
            total_out: 0,
        })
    }

    /// Feeds samples; appends converted output to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(samples);
            return Ok(());
        };
        self.pending.extend_from_slice(samples);
        self.total_in += samples.len() as u64;
        let before = out.len();
        let mut start = 0;
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let block = &self.pending[start..start + need];
            let produced = run_block(inner, block, &mut self.out_buf)?;
            emit(&self.out_buf[..produced], &mut self.delay_left, out);
            start += need;
        }
        self.pending.drain(..start);
        self.total_out += (out.len() - before) as u64;
        Ok(())
    }

    /// Flushes what is buffered (end of a stream): feeds silence through until the output
    /// holds exactly as much audio as the input did, so recordings keep their length.
    pub fn flush(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        let expected = (self.total_in as f64 * inner.resample_ratio()).round() as u64;
        let mut block = std::mem::take(&mut self.pending);
        // Bounded: each round emits at least one block once the delay is spent.
        for _ in 0..64 {
            if self.total_out >= expected {
                break;
            }
            let need = inner.input_frames_next();
            block.resize(need, 0.0);
            let produced = run_block(inner, &block, &mut self.out_buf)?;
            block.clear();
            let mut chunk = Vec::with_capacity(produced);
            emit(&self.out_buf[..produced], &mut self.delay_left, &mut chunk);
            let room = (expected - self.total_out) as usize;
            chunk.truncate(room);
            self.total_out += chunk.len() as u64;
            out.extend_from_slice(&chunk);
        }
        inner.reset();
        self.delay_left = inner.output_delay();
        self.total_in = 0;
        self.total_out = 0;
        Ok(())
    }
}

fn run_block(
    inner: &mut Fft<f32>,
    block: &[f32],
    out_buf: &mut [f32],
) -> Result<usize, ResampleError> {
    let input = InterleavedSlice::new(block, 1, block.len())
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let frames = out_buf.len();
    let mut output = InterleavedSlice::new_mut(out_buf, 1, frames)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let (_, produced) = inner
        .process_into_buffer(&input, &mut output, None)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    Ok(produced)
}

fn emit(samples: &[f32], delay_left: &mut usize, out: &mut Vec<f32>) {
    let skip = (*delay_left).min(samples.len());
    *delay_left -= skip;
    out.extend_from_slice(&samples[skip..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (i as f32 * hz * 2.0 * std::f32::consts::PI / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn whole_clip_keeps_duration() {
        for from in [8000, 22050, 44100, 48000] {
            let out = resample_all(&sine(from, 440.0, 1.0), from, 16000).expect("resample");
            assert!(
                (out.len() as i64 - 16000).abs() <= 2,
                "{from}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn streaming_matches_duration_and_frequency_content() {
        for from in [8000u32, 11025, 44100, 48000] {
            let input = sine(from, 440.0, 1.0);
            let mut r = StreamResampler::new(from, 16000).expect("new");
            let mut out = Vec::new();
            // Feed awkward chunk sizes, as a network would.
            for chunk in input.chunks(337) {
                r.push(chunk, &mut out).expect("push");
            }
            r.flush(&mut out).expect("flush");
            let expected = 16000;
            assert!(
                (out.len() as i64 - expected as i64).abs() <= 1,
                "{from}: {}",
                out.len()
            );
            // Zero crossings of a 440 Hz sine over the middle 0.5 s: about 440.
            let mid = &out[4000..12000];
            let crossings = mid
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            assert!((430..=450).contains(&crossings), "{from}: {crossings}");
        }
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut r = StreamResampler::new(16000, 16000).expect("new");
        let mut out = Vec::new();
        r.push(&[0.1, 0.2], &mut out).expect("push");
        assert_eq!(out, vec![0.1, 0.2]);
    }
}
