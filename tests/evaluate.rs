//! `aurl::evaluate` on the fixtures: a transposed copy is caught by the plagiarism check,
//! unreadable files are reported and skipped, and a set compared with itself agrees.

use std::path::{Path, PathBuf};

use aurl::core::analysis::melody;
use aurl::core::tokenize::{Remi, TokenizerConfig};
use aurl::core::{Note, Pitch, Score, Track, Velocity};
use aurl::data::{Mode, WriteOptions, read_midi_file, write_midi};
use aurl::evaluate::{PieceSet, evaluate_sets};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_transposed_copy_is_found_whole_and_bad_files_are_skipped() {
    let dir = scratch("evaluate-plagiarism");
    // A reference melody of 24 notes, unlike anything in the fixtures.
    let pitches: Vec<u8> = (0..24u8).map(|i| 55 + (i * 7) % 17).collect();
    let piece = |shift: u8| {
        let mut t = Track::new("melody");
        for (i, &p) in pitches.iter().enumerate() {
            let pitch = Pitch::new(p + shift).unwrap();
            t.notes.push(Note::new(
                pitch,
                Velocity::new(80).unwrap(),
                240 * i as u64,
                240,
            ));
        }
        let mut s = Score::new(480);
        s.tracks.push(t);
        s
    };
    let reference = dir.join("reference");
    let generated = dir.join("generated");
    std::fs::create_dir_all(&reference).unwrap();
    std::fs::create_dir_all(&generated).unwrap();
    let write = |path: PathBuf, score: &Score| {
        std::fs::write(path, write_midi(score, &WriteOptions::default()).unwrap()).unwrap();
    };
    write(reference.join("tune.mid"), &piece(0));
    std::fs::copy(
        fixtures().join("triplets.mid"),
        reference.join("triplets.mid"),
    )
    .unwrap();
    write(generated.join("copy_up_a_third.mid"), &piece(4));
    std::fs::write(generated.join("garbage.mid"), b"not a midi file").unwrap();
    write(generated.join("empty.mid"), &Score::new(480));

    let gen_set = PieceSet::read(&[generated]);
    let ref_set = PieceSet::read(&[reference]);
    assert_eq!(gen_set.len(), 1);
    let skipped: Vec<String> = gen_set
        .unreadable
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, ["empty.mid", "garbage.mid"]);

    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let eval = evaluate_sets(&gen_set, &ref_set, &remi);
    let (notes, file) = eval.passages[0].shared.clone().expect("the copy is found");
    assert_eq!(notes, 24, "every note of the transposed copy");
    assert!(file.ends_with("tune.mid"));
    assert_eq!(
        eval.rows.len(),
        aurl::core::metrics::PIECE_METRICS.len() + 1
    );
    let json = serde_json::to_value(&eval).unwrap();
    assert_eq!(json["passages"][0]["shared"][0], 24);
    assert!(eval.table().contains("longest_shared_passage"));
}

#[test]
fn every_fixture_has_finite_metrics_and_a_melody() {
    let set = PieceSet::read(&[fixtures()]);
    assert!(set.len() >= 10, "most fixtures are readable");
    for (score, file) in set.scores.iter().zip(&set.files) {
        for (name, value) in aurl::core::metrics::PIECE_METRICS
            .iter()
            .zip(aurl::core::metrics::piece_metrics(score))
        {
            assert!(
                value.is_none_or(f64::is_finite),
                "{name} of {}",
                file.display()
            );
        }
        let has_pitched = score
            .tracks
            .iter()
            .any(|t| !t.is_drum && !t.notes.is_empty());
        assert_eq!(!melody(score).is_empty(), has_pitched, "{}", file.display());
    }
    // Reading the same file leniently through the set and directly gives the same score.
    let path = fixtures().join("triplets.mid");
    let set = PieceSet::read(std::slice::from_ref(&path));
    assert_eq!(
        set.scores[0],
        read_midi_file(&path, Mode::Lenient).unwrap().0
    );
}
