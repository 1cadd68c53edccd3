//! The bundled chorales: found from any working directory, complete, split by hymn tune.
//!
//! `AURL_CHORALES_SOURCE=../shared/data cargo test --test bundled_corpus -- --ignored`
//! regenerates `corpus/bach_chorales/` from the music21 renderings (`bach_chorales/*.mid`
//! and `split.tsv` under that folder).

use std::path::Path;

use aurl::data::corpus::{Split, SplitRule};
use aurl::data::{Mode, WriteOptions, read_midi, write_midi};
use aurl::run::bundled_chorales;

#[test]
fn the_bundled_chorales_are_found_from_any_working_directory_and_split() {
    let elsewhere = std::env::temp_dir();
    std::env::set_current_dir(&elsewhere).expect("a temporary directory");
    let corpus = bundled_chorales().expect("a checkout bundles the chorales");
    let files: Vec<_> = std::fs::read_dir(&corpus.root)
        .expect("readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mid"))
        .collect();
    assert_eq!(files.len(), 409);
    let table = std::fs::read_to_string(&corpus.split_file).expect("readable");
    let rule = SplitRule::from_tsv(&table).expect("a valid table");
    let (mut train, mut valid) = (0, 0);
    for file in &files {
        let name = Path::new(file.file_name().expect("a file name"));
        match rule.split(name) {
            Some(Split::Train) => train += 1,
            Some(Split::Valid) => valid += 1,
            None => panic!("{} is not in the split table", name.display()),
        }
    }
    assert_eq!((train, valid), (379, 30));
    // Files are small and readable as written.
    let total: u64 = files
        .iter()
        .map(|f| f.metadata().map_or(0, |m| m.len()))
        .sum();
    assert!(total <= 1_500_000, "{total} bytes");
    let bytes = std::fs::read(&files[0]).expect("readable");
    let (score, report) = read_midi(&bytes, Mode::Strict).expect("strictly valid");
    assert_eq!(score.ticks_per_quarter, 480);
    assert!(score.note_count() > 0 && report.repair_map().is_empty());
}

#[test]
#[ignore = "regenerates corpus/bach_chorales from AURL_CHORALES_SOURCE"]
fn regenerate_the_bundled_chorales() {
    let source = std::env::var_os("AURL_CHORALES_SOURCE").expect("AURL_CHORALES_SOURCE is set");
    let source = Path::new(&source);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/bach_chorales");
    std::fs::create_dir_all(&target).expect("writable");
    let table = std::fs::read_to_string(source.join("split.tsv")).expect("the source's split");
    let mut lines = vec!["file\tsplit\tgroup".to_string()];
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let Some(name) = cols[0].strip_prefix("bach_chorales/") else {
            continue;
        };
        let bytes = std::fs::read(source.join(cols[0])).expect("readable");
        let (score, _) = read_midi(&bytes, Mode::Lenient).expect("readable MIDI");
        let midi = write_midi(&score.resampled(480), &WriteOptions::default()).expect("writable");
        std::fs::write(target.join(name), midi).expect("writable");
        let group = cols[2].strip_prefix("bach_chorales/").unwrap_or(cols[2]);
        lines.push(format!("{name}\t{}\t{group}", cols[1]));
    }
    lines.push(String::new());
    std::fs::write(target.join("split.tsv"), lines.join("\n")).expect("writable");
}
