//! Rendering against a SoundFont the test builds itself: one sine sample, one preset.

use super::*;
use aurl_core::{Note, Pitch, Score, Track, Velocity};

// Sample rate and period of the test's sine: 44,000 / 100 = 440 Hz.
const RATE: u32 = 44_000;
const PERIOD: usize = 100;
const LENGTH: usize = PERIOD * 40;

// Generator operators (SoundFont 2.04, section 8.1.2).
const KEY_RANGE: u16 = 43;
const RELEASE_VOL_ENV: u16 = 38;
const INSTRUMENT: u16 = 41;
const SAMPLE_MODES: u16 = 54;
const SAMPLE_ID: u16 = 53;

/// A SoundFont sub-chunk (even sizes: odd strings get a second zero byte).
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    if body.len() % 2 == 1 {
        body.push(0);
    }
    let mut out = id.to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn list(kind: &[u8; 4], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = kind.to_vec();
    for c in chunks {
        body.extend_from_slice(c);
    }
    chunk(b"LIST", &body)
}

fn name(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..s.len()].copy_from_slice(s.as_bytes());
    out
}

fn generator(op: u16, amount: i16) -> Vec<u8> {
    let mut g = op.to_le_bytes().to_vec();
    g.extend_from_slice(&amount.to_le_bytes());
    g
}

fn bag(gen_index: u16) -> Vec<u8> {
    let mut b = gen_index.to_le_bytes().to_vec();
    b.extend_from_slice(&0u16.to_le_bytes());
    b
}

/// The sample data: one looped sine of `LENGTH` samples, then the 46 zero samples a
/// SoundFont sample must be followed by.
fn sdta() -> Vec<u8> {
    let mut samples: Vec<i16> = (0..LENGTH)
        .map(|i| ((i as f64 / PERIOD as f64 * std::f64::consts::TAU).sin() * 16_000.0) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0, 46));
    let smpl: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    list(b"sdta", &[chunk(b"smpl", &smpl)])
}

/// The sample header: "Sine" (root key 69 = A4, looped over its whole length), then EOS.
fn shdr() -> Vec<u8> {
    let mut shdr = Vec::new();
    for (sample_name, end) in [("Sine", LENGTH as u32), ("EOS", 0)] {
        shdr.extend_from_slice(&name(sample_name));
        shdr.extend_from_slice(&0u32.to_le_bytes()); // start
        shdr.extend_from_slice(&end.to_le_bytes());
        shdr.extend_from_slice(&0u32.to_le_bytes()); // loop start
        shdr.extend_from_slice(&end.to_le_bytes()); // loop end
        shdr.extend_from_slice(&RATE.to_le_bytes());
        shdr.push(69); // original pitch
        shdr.push(0); // pitch correction
        shdr.extend_from_slice(&0u16.to_le_bytes()); // sample link
        shdr.extend_from_slice(&1u16.to_le_bytes()); // mono
    }
    shdr
}

/// The preset data: preset "Sine" (bank 0, program 0) with one zone naming instrument
/// "Sine", whose zone plays the sample over every key with a short release.
fn pdta() -> Vec<u8> {
    let mut phdr = Vec::new();
    for (preset_name, bag) in [("Sine", 0u16), ("EOP", 1)] {
        phdr.extend_from_slice(&name(preset_name));
        phdr.extend_from_slice(&0u16.to_le_bytes()); // preset
        phdr.extend_from_slice(&0u16.to_le_bytes()); // bank
        phdr.extend_from_slice(&bag.to_le_bytes());
        phdr.extend_from_slice(&[0u8; 12]); // library, genre, morphology
    }
    let mut inst = Vec::new();
    for (inst_name, bag) in [("Sine", 0u16), ("EOI", 1)] {
        inst.extend_from_slice(&name(inst_name));
        inst.extend_from_slice(&bag.to_le_bytes());
    }
    let igen = [
        generator(KEY_RANGE, 0x7F00u16 as i16), // keys 0..=127
        generator(RELEASE_VOL_ENV, -3986),      // ≈ 0.1 s release
        generator(SAMPLE_MODES, 1),             // loop continuously
        generator(SAMPLE_ID, 0),
        generator(0, 0),
    ]
    .concat();
    list(
        b"pdta",
        &[
            chunk(b"phdr", &phdr),
            chunk(b"pbag", &[bag(0), bag(1)].concat()),
            chunk(b"pmod", &[0u8; 10]),
            chunk(
                b"pgen",
                &[generator(INSTRUMENT, 0), generator(0, 0)].concat(),
            ),
            chunk(b"inst", &inst),
            chunk(b"ibag", &[bag(0), bag(4)].concat()),
            chunk(b"imod", &[0u8; 10]),
            chunk(b"igen", &igen),
            chunk(b"shdr", &shdr()),
        ],
    )
}

/// A minimal SoundFont 2: one looped sine wave (one period of `PERIOD` samples at
/// `RATE`, root key 69 = A4 = 440 Hz when `RATE / PERIOD = 440`), one instrument, one
/// preset (bank 0, program 0), no envelope beyond a short release.
pub(crate) fn sine_soundfont() -> Vec<u8> {
    let info = list(
        b"INFO",
        &[
            chunk(b"ifil", &[2, 0, 4, 0]),
            chunk(b"isng", b"EMU8000\0"),
            chunk(b"INAM", b"aurl test sine\0"),
        ],
    );
    let mut body = b"sfbk".to_vec();
    body.extend_from_slice(&info);
    body.extend_from_slice(&sdta());
    body.extend_from_slice(&pdta());
    chunk(b"RIFF", &body)
}

/// One track of quarter notes `(pitch, start quarter)` at 120 BPM (480 ticks per quarter).
fn score(notes: &[(u8, u64)]) -> Score {
    let mut track = Track::default();
    for &(pitch, start) in notes {
        track.notes.push(Note::new(
            Pitch::new(pitch).expect("valid pitch"),
            Velocity::new(100).expect("valid velocity"),
            start * 480,
            480,
        ));
    }
    let mut score = Score::new(480);
    score.tracks.push(track);
    score
}

fn rms(samples: &[f32]) -> f64 {
    (samples
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / samples.len().max(1) as f64)
        .sqrt()
}

/// The frequency of the strongest of 1,000 candidate bins between 100 and 2,000 Hz
/// (Goertzel), refined by a parabola through its neighbours.
fn dominant_frequency(samples: &[f32], rate: u32) -> f64 {
    let power = |f: f64| {
        let w = std::f64::consts::TAU * f / f64::from(rate);
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in samples {
            let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
    };
    let (lo, step) = (100.0, 0.25);
    let (best, _) = (0..7_600)
        .map(|i| (i, power(lo + step * i as f64)))
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    lo + step * best as f64
}

#[test]
fn a_single_note_sounds_at_its_pitch_for_its_length_then_fades() {
    let font = SoundFont::from_bytes(&sine_soundfont()).expect("the test font parses");
    // A4 (440 Hz) for one quarter note at 120 BPM = 0.5 s, starting at 1 s.
    let audio = render(&score(&[(69, 2)]), &font, &RenderOptions::default()).expect("renders");
    let rate = audio.sample_rate as usize;
    // Piece 1.5 s + release tail 1.5 s.
    assert!(
        (audio.seconds() - 3.0).abs() < 0.05,
        "{} s",
        audio.seconds()
    );
    let silent = rms(&audio.left[..rate * 9 / 10]);
    let sounding = rms(&audio.left[rate * 11 / 10..rate * 14 / 10]);
    let after = rms(&audio.left[rate * 2..]);
    assert!(silent < 1e-4, "before the note: {silent}");
    assert!(sounding > 0.01, "during the note: {sounding}");
    assert!(after < 1e-3, "after the release: {after}");
    let f = dominant_frequency(
        &audio.left[rate * 11 / 10..rate * 14 / 10],
        audio.sample_rate,
    );
    let cents = 1200.0 * (f / 440.0).log2();
    assert!(cents.abs() < 3.0, "{f} Hz is {cents} cents from A4");
}

#[test]
fn every_onset_carries_energy_and_renders_repeat_exactly() {
    let font = SoundFont::from_bytes(&sine_soundfont()).expect("the test font parses");
    let notes = [(60, 0), (64, 2), (67, 4), (72, 6)];
    let options = RenderOptions::default();
    let audio = render(&score(&notes), &font, &options).expect("renders");
    let rate = audio.sample_rate as usize;
    for &(pitch, quarter) in &notes {
        let start = quarter as usize * rate / 2;
        let energy = rms(&audio.left[start + rate / 20..start + rate * 2 / 5]);
        assert!(energy > 0.01, "note {pitch} at quarter {quarter}: {energy}");
        // Between the notes (a quarter of silence after each) it is quiet again.
        let gap = rms(&audio.left[start + rate * 3 / 4..start + rate * 19 / 20]);
        assert!(gap < 1e-3, "after note {pitch}: {gap}");
    }
    let again = render(&score(&notes), &font, &options).expect("renders");
    assert_eq!(audio.to_wav(), again.to_wav());
    let (wav_rate, left, right) = wav::decode(&audio.to_wav()).expect("a WAV file");
    assert_eq!(wav_rate, 44_100);
    assert_eq!(left.len(), audio.left.len());
    assert_eq!(right.len(), audio.right.len());
}

#[test]
fn malformed_soundfonts_are_typed_errors() {
    let good = sine_soundfont();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("not RIFF", b"hello world, not a soundfont".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("bad sample reference", {
            // Point the instrument's sample id at a sample that does not exist.
            let mut bad = good.clone();
            let at = bad
                .windows(4)
                .position(|w| w == [53, 0, 0, 0])
                .expect("the sample-id generator");
            bad[at + 2] = 7;
            bad
        }),
    ];
    for (what, bytes) in cases {
        match SoundFont::from_bytes(&bytes) {
            Err(AudioError::SoundFont { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let missing = SoundFont::from_file(Path::new("/nonexistent/aurl.sf2"));
    assert!(matches!(missing, Err(AudioError::Io { .. })), "{missing:?}");
}
