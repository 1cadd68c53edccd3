//! Fuzz the MIDI reader: any bytes, both modes, never a panic; and whatever the lenient
//! reader accepts must survive a write/read round trip unchanged.
//!
//! ```text
//! cd aurl-data/fuzz && cargo fuzz run read_midi ../../fixtures -- -max_len=4096
//! ```
#![no_main]

use aurl_data::{read_midi, write_midi, Mode, WriteOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_midi(data, Mode::Strict);
    if let Ok((score, _)) = read_midi(data, Mode::Lenient) {
        // Writing can refuse (e.g. a silence longer than a MIDI delta time), never panic.
        if let Ok(bytes) = write_midi(&score, &WriteOptions::keep_resolution()) {
            let (back, report) = read_midi(&bytes, Mode::Strict).expect("own output is strict-valid");
            assert!(report.is_clean(), "own output needed repairs: {:?}", report.repair_map());
            let mut expected = score.clone();
            let channels = aurl_data::allocate_channels(&expected);
            for (t, c) in expected.tracks.iter_mut().zip(channels) {
                t.channel = c;
            }
            expected.canonicalize();
            assert_eq!(back, expected);
        }
    }
});
