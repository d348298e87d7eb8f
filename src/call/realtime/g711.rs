//! G.711 (`audio/pcmu`, `audio/pcma`) for telephony clients: 8 kHz companded bytes to and
//! from the 24 kHz PCM a Realtime call runs at (linear interpolation up, a three-sample
//! average down, which also keeps what lies above 4 kHz out of the 8 kHz signal).

/// Samples of 24 kHz per sample of 8 kHz.
const RATIO: usize = 3;

/// μ-law byte to linear PCM (ITU-T G.711).
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let value = if b & 0x80 != 0 { -magnitude } else { magnitude };
    value as i16
}

/// Linear PCM to a μ-law byte.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// A-law byte to linear PCM (ITU-T G.711).
pub fn alaw_to_linear(byte: u8) -> i16 {
    let b = byte ^ 0x55;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    let value = if b & 0x80 != 0 { magnitude } else { -magnitude };
    value as i16
}

/// Linear PCM to an A-law byte (on the standard's 13-bit scale).
pub fn linear_to_alaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    let Some(segment) = SEGMENT_ENDS.iter().position(|&end| v <= end) else {
        return 0x7f ^ mask;
    };
    let shift = if segment < 2 { 1 } else { segment };
    let value = ((segment as i32) << 4) | ((v >> shift) & 0x0f);
    (value as u8) ^ mask
}

/// 8 kHz samples to 24 kHz, interpolating from `last` (the previous call's final sample,
/// updated), so consecutive chunks join without a step.
pub fn upsample(samples: &[i16], last: &mut i16) -> Vec<i16> {
    let mut out = Vec::with_capacity(samples.len() * RATIO);
    for &s in samples {
        let (a, b) = (i32::from(*last), i32::from(s));
        for k in 1..=RATIO as i32 {
            out.push((a + (b - a) * k / RATIO as i32) as i16);
        }
        *last = s;
    }
    out
}

/// 24 kHz samples to 8 kHz: each output sample the mean of three (a trailing one or two
/// are averaged on their own).
pub fn downsample(samples: &[i16]) -> Vec<i16> {
    samples
        .chunks(RATIO)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companding_round_trips_within_its_step() {
        for s in (-32_000i16..32_000).step_by(97) {
            let step = (i32::from(s).abs() / 16).max(16);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            assert!((u - i32::from(s)).abs() <= step, "μ-law {s} -> {u}");
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            assert!((a - i32::from(s)).abs() <= step, "A-law {s} -> {a}");
        }
    }

    #[test]
    fn known_code_points_decode_as_the_standard_says() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
    }

    #[test]
    fn upsampling_triples_and_joins_chunks() {
        let mut last = 0;
        assert_eq!(upsample(&[300], &mut last), vec![100, 200, 300]);
        assert_eq!(upsample(&[0], &mut last), vec![200, 100, 0]);
        assert_eq!(downsample(&[3, 6, 9, 30]), vec![6, 30]);
    }
}
