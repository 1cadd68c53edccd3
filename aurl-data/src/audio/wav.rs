//! The WAV container: RIFF `WAVE` with a PCM `fmt ` chunk and interleaved 16-bit samples.

use super::Audio;

/// Encodes `audio` as a stereo 16-bit PCM WAV file (samples clipped to ±1, rounded).
pub(super) fn encode(audio: &Audio) -> Vec<u8> {
    const CHANNELS: u16 = 2;
    const BITS: u16 = 16;
    let frames = audio.left.len().min(audio.right.len());
    let data_len = frames * usize::from(CHANNELS) * usize::from(BITS / 8);
    let block_align = CHANNELS * BITS / 8;
    let byte_rate = audio.sample_rate * u32::from(block_align);
    let mut out = Vec::with_capacity(44 + data_len);
    out.extend_from_slice(b"RIFF");
    // Sizes above 4 GiB cannot be written in a RIFF header; clamp (an hour of CD audio is
    // 635 MB, far below).
    out.extend_from_slice(
        &u32::try_from(36 + data_len)
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&CHANNELS.to_le_bytes());
    out.extend_from_slice(&audio.sample_rate.to_le_bytes());
    out.extend_from_slice(&byte_rate.to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&BITS.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(data_len).unwrap_or(u32::MAX).to_le_bytes());
    for (&l, &r) in audio.left.iter().zip(&audio.right) {
        out.extend_from_slice(&quantize(l).to_le_bytes());
        out.extend_from_slice(&quantize(r).to_le_bytes());
    }
    out
}

/// A sample in ±1 as 16-bit PCM (NaN as silence).
fn quantize(x: f32) -> i16 {
    let x = if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) };
    (x * f32::from(i16::MAX)).round() as i16
}

/// The 16-bit samples of a WAV file [`encode`] wrote, de-interleaved (for tests and tools).
#[cfg(test)]
pub(super) fn decode(bytes: &[u8]) -> Option<(u32, Vec<i16>, Vec<i16>)> {
    if bytes.len() < 44 || &bytes[..4] != b"RIFF" || &bytes[8..16] != b"WAVEfmt " {
        return None;
    }
    let rate = u32::from_le_bytes(bytes[24..28].try_into().ok()?);
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Some((rate, left, right))
}
