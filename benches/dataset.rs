//! The data loader's throughput with augmentation on: building one epoch of training
//! windows (augment every training score, tokenize it, cut bar-aligned windows that
//! re-emit the header) on one thread and on all threads, and turning a batch of windows
//! into tensors. Criterion's "elem/s" is windows per second.
//!
//! `cargo bench --bench dataset` measures the fixtures; `AURL_BENCH_DIR=/path` adds every
//! MIDI file under that folder. Training the `small` model on 2 CPU threads consumes about
//! 2,400 tokens/s ≈ 9.4 windows of 256 tokens per second.

use std::path::{Path, PathBuf};

use aurl::core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl::data::augment::{Augmentation, Schedule};
use aurl::data::corpus::{ScoreCorpus, SplitRule, read_corpus};
use aurl::model::train::{TokenWindows, WindowTensors};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SEQ_LEN: usize = 256;

fn corpora() -> Vec<(String, ScoreCorpus)> {
    let read = |dir: &Path| read_corpus(&[dir.to_path_buf()], &SplitRule::Hash(0), None);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = vec![(
        "fixtures".to_owned(),
        read(&fixtures).expect("no config to refuse"),
    )];
    if let Some(dir) = std::env::var_os("AURL_BENCH_DIR") {
        out.push((
            "corpus".to_owned(),
            read(Path::new(&dir)).expect("no config to refuse"),
        ));
    }
    out
}

/// Every transform on, as a heavily augmented run would have it.
fn augmentation() -> Augmentation {
    let mut a = Augmentation::default();
    a.transpose.probability = Schedule::Constant(1.0);
    a.time_stretch.probability = Schedule::Constant(0.5);
    a.velocity.probability = Schedule::Constant(0.5);
    a.instruments.probability = Schedule::Constant(0.2);
    a.swing.probability = Schedule::Constant(0.2);
    a.humanize.probability = Schedule::Constant(0.2);
    a
}

fn epoch(corpus: &ScoreCorpus, remi: &Remi, augment: &Augmentation, e: u64) -> TokenWindows {
    let vocab = remi.vocab();
    let sequences: Vec<_> = corpus
        .augmented_train(remi, augment, 7, e)
        .expect("valid config")
        .into_iter()
        .map(|s| s.framed(vocab))
        .collect();
    TokenWindows::with_headers(&sequences, SEQ_LEN, SEQ_LEN, vocab)
}

fn bench_dataset(c: &mut Criterion) {
    let remi = Remi::new(&TokenizerConfig::default()).expect("default config is valid");
    let augment = augmentation();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let device = aurl::backend::default_device();
    for (name, corpus) in corpora() {
        let windows = epoch(&corpus, &remi, &augment, 0).count();
        eprintln!(
            "{name}: {} training files, {windows} windows of {SEQ_LEN} tokens per epoch",
            corpus.train.len()
        );
        let mut group = c.benchmark_group("dataset/epoch");
        group.sample_size(10);
        group.throughput(Throughput::Elements(windows as u64));
        let mut e = 0;
        group.bench_function(BenchmarkId::new("threads1", &name), |b| {
            b.iter(|| {
                e += 1;
                one.install(|| epoch(&corpus, &remi, &augment, e))
            });
        });
        group.bench_function(BenchmarkId::new("all_threads", &name), |b| {
            b.iter(|| {
                e += 1;
                epoch(&corpus, &remi, &augment, e)
            });
        });
        group.finish();

        let windows = epoch(&corpus, &remi, &augment, 0);
        let batch: Vec<usize> = (0..16).map(|i| i % windows.count()).collect();
        let mut group = c.benchmark_group("dataset/batch");
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.bench_function(BenchmarkId::new("b16x256", &name), |b| {
            b.iter(|| windows.batch(&batch, &device));
        });
        group.finish();
    }
}

criterion_group!(benches, bench_dataset);
criterion_main!(benches);
