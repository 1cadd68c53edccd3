//! The token cache on the fixtures: reuse, invalidation by content and by config, damaged
//! shards detected and rebuilt, interrupted writes, concurrent builders.

mod common;

use std::path::{Path, PathBuf};

use aurl_core::tokenize::{Remi, TokenizerConfig, Tsd};
use aurl_core::{Note, Pitch, Score, Track, Velocity};
use aurl_data::cache::{CacheOptions, TokenCache, build_cache};
use aurl_data::corpus::{SplitRule, TokenizedCorpus, read_corpus};
use aurl_data::preprocess::Preprocessing;
use aurl_data::{WriteOptions, write_midi};
use common::fixtures_dir;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aurl-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn same(a: &TokenizedCorpus, b: &TokenizedCorpus) -> bool {
    let ids = |c: &TokenizedCorpus| -> Vec<Vec<u16>> {
        c.train
            .iter()
            .chain(&c.valid)
            .map(|s| s.ids.clone())
            .collect()
    };
    ids(a) == ids(b)
        && a.train.iter().zip(&b.train).all(|(x, y)| x.bars == y.bars)
        && (a.train_notes, a.valid_notes) == (b.train_notes, b.valid_notes)
}

fn copy_fixtures(to: &Path) {
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_second_build_reuses_everything_and_reads_back_what_tokenizing_gives() {
    let cache = temp("reuse");
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let roots = [fixtures_dir()];
    let rule = SplitRule::Hash(10);
    let options = CacheOptions {
        shard_files: 8,
        ..CacheOptions::new(&cache)
    };
    let first = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    assert!(first.report.tokenized >= 20);
    assert!(first.report.shards_written >= 3, "8 files per shard");
    assert!(
        !first.report.failed.is_empty(),
        "damaged fixtures are reported"
    );
    let second = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    assert_eq!(
        (second.report.tokenized, second.report.shards_written),
        (0, 0)
    );
    assert_eq!(second.report.cached, first.report.tokenized);
    assert_eq!(second.report.tokens, first.report.tokens);
    let direct = read_corpus(&roots, &rule, None).unwrap().tokenize(&remi);
    assert!(same(&second.tokenized(), &direct));
    assert!(same(&first.tokenized(), &direct));
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn a_changed_config_gets_its_own_folder_and_a_changed_file_alone_is_redone() {
    let cache = temp("invalidate");
    let corpus = temp("invalidate-corpus");
    copy_fixtures(&corpus);
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let roots = [corpus.clone()];
    let rule = SplitRule::Hash(10);
    let options = CacheOptions::new(&cache);
    let base = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    // Another tokenizer, or other preprocessing: another folder, everything tokenized.
    let tsd = Tsd::new(&TokenizerConfig::default()).unwrap();
    let other = build_cache(&roots, &rule, &tsd, None, &options, |_| {}).unwrap();
    assert_ne!(other.report.cache_dir, base.report.cache_dir);
    assert_eq!(other.report.tokenized, base.report.tokenized);
    let pre = Preprocessing {
        max_voices: Some(1),
        ..Preprocessing::default()
    };
    let reduced = build_cache(&roots, &rule, &remi, Some(&pre), &options, |_| {}).unwrap();
    assert_ne!(reduced.report.cache_dir, base.report.cache_dir);
    assert_eq!(reduced.report.tokenized, base.report.tokenized);
    // One file edited: only it is tokenized again; the old folders still serve their configs.
    let mut score = Score::new(480);
    let mut t = Track::new("new");
    t.notes
        .push(Note::new(Pitch::MIDDLE_C, Velocity::saturating(90), 0, 480));
    score.tracks.push(t);
    let bytes = write_midi(&score, &WriteOptions::default()).unwrap();
    std::fs::write(corpus.join("triplets.mid"), bytes).unwrap();
    let again = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    assert_eq!(again.report.tokenized, 1);
    assert_eq!(again.report.cached, base.report.tokenized - 1);
    let tsd_again = build_cache(&roots, &rule, &tsd, None, &options, |_| {}).unwrap();
    assert_eq!(tsd_again.report.tokenized, 1);
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_dir_all(&corpus).unwrap();
}

#[test]
fn a_damaged_shard_is_detected_deleted_and_rebuilt() {
    let cache = temp("damage");
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let roots = [fixtures_dir()];
    let rule = SplitRule::Hash(10);
    let options = CacheOptions {
        shard_files: 10,
        ..CacheOptions::new(&cache)
    };
    let first = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    let expected = first.tokenized();
    let dir = first.report.cache_dir.clone();
    drop(first);
    let mut shards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tok"))
        .collect();
    shards.sort();
    let victim = &shards[0];
    let entries = TokenCache::open(&dir).unwrap().len();
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(victim, &bytes).unwrap();
    // A killed writer's leftover temporary file is ignored.
    std::fs::write(dir.join(".shard-x.tok.1-0.tmp"), b"half a shard").unwrap();
    let opened = TokenCache::open(&dir).unwrap();
    assert_eq!(opened.damaged().len(), 1);
    assert!(
        opened.damaged()[0].1.contains("checksum"),
        "{:?}",
        opened.damaged()
    );
    assert!(opened.len() < entries);
    assert!(!victim.exists(), "a damaged shard is deleted");
    drop(opened);
    let rebuilt = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    assert!(rebuilt.report.tokenized > 0 && rebuilt.report.tokenized <= 10);
    assert!(same(&rebuilt.tokenized(), &expected));
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn concurrent_builders_of_one_cache_agree() {
    let cache = temp("concurrent");
    let roots = [fixtures_dir()];
    let rule = SplitRule::Hash(10);
    let options = CacheOptions {
        shard_files: 4,
        ..CacheOptions::new(&cache)
    };
    let builds: Vec<TokenizedCorpus> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
                    build_cache(&roots, &rule, &remi, None, &options, |_| {})
                        .unwrap()
                        .tokenized()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(same(&builds[0], &builds[1]) && same(&builds[1], &builds[2]));
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let after = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    assert_eq!(after.report.tokenized, 0);
    assert!(after.report.damaged_shards.is_empty());
    assert!(same(&after.tokenized(), &builds[0]));
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn parts_built_by_several_processes_tokenize_each_file_once_and_fill_the_whole_cache() {
    let cache = temp("parts");
    let roots = [fixtures_dir()];
    let rule = SplitRule::Hash(10);
    let options = CacheOptions {
        shard_files: 4,
        ..CacheOptions::new(&cache)
    };
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let reports: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|k| {
                let options = options.clone().part_of(k, 3);
                let remi = &remi;
                let rule = &rule;
                let roots = &roots;
                s.spawn(move || {
                    build_cache(roots, rule, remi, None, &options, |_| {})
                        .unwrap()
                        .report
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let whole = build_cache(&roots, &rule, &remi, None, &options, |_| {}).unwrap();
    // Every file was found by exactly one part, and tokenized there.
    let found: usize = reports.iter().map(|r| r.files).sum();
    let tokenized: usize = reports.iter().map(|r| r.tokenized).sum();
    assert_eq!(found, whole.report.files);
    assert!(reports.iter().all(|r| r.files > 0 && r.cached == 0));
    assert_eq!(
        whole.report.tokenized, 0,
        "the parts left nothing to tokenize"
    );
    assert_eq!(tokenized, whole.report.cached);
    let alone = temp("parts-alone");
    let fresh = build_cache(
        &roots,
        &rule,
        &remi,
        None,
        &CacheOptions::new(&alone),
        |_| {},
    );
    assert!(same(&whole.tokenized(), &fresh.unwrap().tokenized()));
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_dir_all(&alone).unwrap();
}
