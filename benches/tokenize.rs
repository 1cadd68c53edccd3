//! Tokenizer throughput, single thread: parse + encode from MIDI bytes, decode to a score,
//! and decode all the way to MIDI bytes (what MidiTok's `decode(...).dump_midi` measures).
//!
//! `cargo bench --bench tokenize` measures the fixtures; `AURL_BENCH_DIR=/path` adds every
//! MIDI file under that folder. One iteration processes every file once; criterion's
//! "elem/s" is files/s, and the token count per corpus is printed so tokens/s follows.

use std::path::{Path, PathBuf};

use aurl::core::tokenize::{SCHEMES, TokenId, TokenizerConfig, by_name};
use aurl::data::audit::discover;
use aurl::data::{Mode, WriteOptions, read_midi, write_midi};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn load(dir: &Path) -> Vec<Vec<u8>> {
    let found = discover(&[dir.to_path_buf()]);
    found
        .files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| read_midi(b, Mode::Lenient).is_ok())
        .collect()
}

fn corpora() -> Vec<(String, Vec<Vec<u8>>)> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = vec![("fixtures".to_owned(), load(&fixtures))];
    if let Some(dir) = std::env::var_os("AURL_BENCH_DIR") {
        out.push(("corpus".to_owned(), load(Path::new(&dir))));
    }
    out
}

fn bench_tokenize(c: &mut Criterion) {
    let config = TokenizerConfig::default();
    for (corpus, files) in corpora() {
        for scheme in SCHEMES {
            let tokenizer = by_name(scheme, &config).expect("default config is valid");
            let encoded: Vec<Vec<TokenId>> = files
                .iter()
                .filter_map(|b| read_midi(b, Mode::Lenient).ok())
                .filter_map(|(s, _)| tokenizer.encode(&s).ok())
                .map(|t| t.ids)
                .collect();
            let tokens: usize = encoded.iter().map(Vec::len).sum();
            eprintln!(
                "{scheme} on {corpus}: {} files, {tokens} tokens",
                files.len()
            );

            let mut group = c.benchmark_group(format!("tokenize/{scheme}"));
            group.sample_size(20);
            group.throughput(Throughput::Elements(files.len() as u64));
            group.bench_with_input(
                BenchmarkId::new("parse_encode", &corpus),
                &files,
                |b, files| {
                    b.iter(|| {
                        let mut n = 0;
                        for f in files {
                            if let Ok((s, _)) = read_midi(f, Mode::Lenient)
                                && let Ok(t) = tokenizer.encode(&s)
                            {
                                n += t.ids.len();
                            }
                        }
                        n
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new("decode", &corpus),
                &encoded,
                |b, encoded| {
                    b.iter(|| {
                        encoded
                            .iter()
                            .map(|ids| tokenizer.decode(ids).0.note_count())
                            .sum::<usize>()
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new("decode_to_midi", &corpus),
                &encoded,
                |b, encoded| {
                    let opts = WriteOptions::default();
                    b.iter(|| {
                        encoded
                            .iter()
                            .map(|ids| {
                                write_midi(&tokenizer.decode(ids).0, &opts).map_or(0, |m| m.len())
                            })
                            .sum::<usize>()
                    })
                },
            );
            group.finish();
        }
    }
}

criterion_group!(benches, bench_tokenize);
criterion_main!(benches);
