//! MIDI read and write throughput, single thread.
//!
//! `cargo bench --bench midi` measures the bundled fixtures; with `AURL_BENCH_DIR=/path`
//! it also measures every MIDI file under that folder (all files held in memory first, so
//! disk speed is not measured). One iteration reads every file once; criterion reports
//! files/s as "elem/s" and MB/s separately, and the notes per file are printed so notes/s
//! follows from files/s.

use std::path::{Path, PathBuf};

use aurl::data::audit::discover;
use aurl::data::{Mode, WriteOptions, read_midi, write_midi};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn load(dir: &Path) -> Vec<Vec<u8>> {
    let found = discover(&[dir.to_path_buf()]);
    found
        .files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
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

fn bench_read(c: &mut Criterion) {
    for (name, files) in corpora() {
        let notes: usize = files
            .iter()
            .filter_map(|b| read_midi(b, Mode::Lenient).ok())
            .map(|(s, _)| s.note_count())
            .sum();
        let bytes: usize = files.iter().map(Vec::len).sum();
        eprintln!(
            "{name}: {} files, {bytes} bytes, {notes} notes ({:.1} notes per file)",
            files.len(),
            notes as f64 / files.len().max(1) as f64
        );
        let mut group = c.benchmark_group("midi/read");
        group.sample_size(20);
        group.throughput(Throughput::Elements(files.len() as u64));
        for mode in [Mode::Lenient, Mode::Strict] {
            let id = BenchmarkId::new(format!("{mode:?}").to_lowercase(), &name);
            group.bench_with_input(id, &files, |b, files| {
                b.iter(|| {
                    let mut n = 0;
                    for f in files {
                        if let Ok((s, _)) = read_midi(f, mode) {
                            n += s.note_count();
                        }
                    }
                    n
                })
            });
        }
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(
            BenchmarkId::new("lenient_bytes", &name),
            &files,
            |b, files| {
                b.iter(|| {
                    files
                        .iter()
                        .filter(|f| read_midi(f, Mode::Lenient).is_ok())
                        .count()
                })
            },
        );
        group.finish();

        let scores: Vec<_> = files
            .iter()
            .filter_map(|b| read_midi(b, Mode::Lenient).ok())
            .map(|(s, _)| s)
            .collect();
        let mut group = c.benchmark_group("midi/write");
        group.sample_size(20);
        group.throughput(Throughput::Elements(scores.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("keep_resolution", &name),
            &scores,
            |b, scores| {
                let opts = WriteOptions::keep_resolution();
                b.iter(|| {
                    scores
                        .iter()
                        .map(|s| write_midi(s, &opts).map_or(0, |v| v.len()))
                        .sum::<usize>()
                })
            },
        );
        group.finish();
    }
}

criterion_group!(benches, bench_read);
criterion_main!(benches);
