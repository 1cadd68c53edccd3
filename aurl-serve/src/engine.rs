//! The decoding engine: one thread owns the model and decodes queued requests together.
//!
//! Requests wait in a bounded queue. With a model of full attention (the usual case) the
//! engine runs a [`Continuous`] batch: between two decoding steps it admits waiting
//! requests (up to `max_batch` rows), each prefilled alone and then decoding with the rest
//! at its own position, and a row that finishes leaves at once — so a request never waits
//! for a batch to drain, and concurrent requests share every step. Models whose attention
//! keeps per-batch state (a sliding window, block summaries) decode in fixed batches
//! instead: whenever the engine is free it takes every request waiting and decodes them
//! through [`Generator::generate_streaming`]. Either way each row samples with its own
//! seed and settings ([`Request::strategy`]), so a piece does not depend on what it was
//! batched with. Notes go to each request's channel the moment their last token is
//! sampled; a client that goes away cancels its row ([`Request::cancel`]) at the next
//! step. A panic while decoding fails the requests that already streamed notes; the others
//! are decoded again one by one, so only the request that caused it fails; the engine
//! keeps serving.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurl::burn::prelude::Device;
use aurl::core::tokenize::{Tokenizer, Vocabulary};
use aurl::model::WeightFormat;
use aurl::model::any::Generative;
use aurl::sampling::{
    BarControl, CancelToken, Continuous, Generated, GenerationConfig, Generator, PieceSummary,
    Request, SamplingError, StreamNote, interpolation_from_midi_bytes, piece_midi,
    prompt_from_midi_bytes,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::{ApiError, GenerateSpec};
use crate::metrics::Metrics;

mod continuous;

/// What the server admits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most new tokens per request (`--max-tokens`).
    pub max_tokens: usize,
    /// Most rows decoded together (`--max-batch`).
    pub max_batch: usize,
    /// Requests waiting beyond the running batch before new ones get a 429 (`--queue`);
    /// with continuous batching up to `max_batch` more have left the queue to join at the
    /// next step.
    pub queue: usize,
    /// Largest request body in bytes (`--max-body`).
    pub max_body: usize,
    /// Seconds a request may take, waiting included (`--timeout`).
    pub timeout_s: f64,
    /// Whether requests join the running batch between steps (`--batching continuous`,
    /// the default where the model allows it) or decode in fixed batches (`--batching
    /// fixed`, for comparisons and bug reports).
    pub continuous: bool,
    /// With fixed batches (models that cannot batch continuously), how long the engine,
    /// given a request while idle, waits for more to batch with it (`--batch-wait-ms`):
    /// requests that arrive together decode together.
    pub batch_wait: Duration,
}

impl Default for Limits {
    /// 4,096 tokens, batches of 16 gathered for 5 ms, a queue of 32, 8 MB bodies, 300 s.
    fn default() -> Self {
        Self {
            max_tokens: 4096,
            max_batch: 16,
            queue: 32,
            max_body: 8 << 20,
            timeout_s: 300.0,
            continuous: true,
            batch_wait: Duration::from_millis(5),
        }
    }
}

/// What `GET /v1/model` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// `transformer`, `vae` or `vae_gan` (a VAE-GAN serves its VAE).
    pub kind: String,
    /// The tokenization scheme.
    pub scheme: String,
    /// Token ids.
    pub vocab_size: usize,
    /// Parameters of the generating model.
    pub parameters: usize,
    /// Tokens of context.
    pub context_length: usize,
    /// Whether requests may ask for `interpolate` (a VAE).
    pub latent: bool,
    /// Token names a request's `controls` may force.
    pub control_tokens: Vec<String>,
    /// The weight format decoding reads.
    pub weights: String,
}

/// A piece with its MIDI bytes and summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Piece {
    /// The standard MIDI file.
    #[serde(skip)]
    pub midi: Vec<u8>,
    /// What it holds.
    pub summary: PieceSummary,
    /// The seed it was sampled with.
    pub seed: u64,
}

/// Messages from the engine to one request.
#[derive(Debug, Clone)]
pub enum Event {
    /// A note of piece `piece` (0 unless interpolating) was completed.
    Note {
        /// Which piece of the request.
        piece: usize,
        /// The note.
        note: StreamNote,
    },
    /// The request is done.
    Done(Result<Vec<Piece>, ApiError>),
}

/// A request in the queue.
#[derive(Debug)]
struct Job {
    spec: GenerateSpec,
    events: mpsc::UnboundedSender<Event>,
    cancel: CancelToken,
    queued: Instant,
}

/// A handle on the engine thread: submit requests, read what it serves.
#[derive(Debug, Clone)]
pub struct Engine {
    queue: mpsc::Sender<Job>,
    info: Arc<ModelInfo>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

/// A submitted request: its events, and the token that cancels it.
#[derive(Debug)]
pub struct Submitted {
    /// Notes as they come, then [`Event::Done`].
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Cancels the request's rows (dropping the receiver does too, at the next note).
    pub cancel: CancelToken,
}

impl Engine {
    /// Starts the engine thread on `model` (on `device`); returns when it is ready to
    /// decode.
    ///
    /// # Errors
    /// The generator refused the configuration (say, `weights`).
    pub fn start(
        model: Generative,
        device: Device,
        limits: Limits,
        workers: usize,
        weights: WeightFormat,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let vocabulary = model.vocabulary().clone();
        let info = Arc::new(model_info(&model, weights));
        let metrics = Arc::new(Metrics::default());
        let (queue, jobs) = mpsc::channel(limits.queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let workers = workers.max(1);
        let config = GenerationConfig {
            batch_size: limits.max_batch.max(1),
            workers: workers.max(1),
            weights,
            context: Some(model.max_seq_len()),
            ..GenerationConfig::default()
        };
        let thread_metrics = Arc::clone(&metrics);
        let max_batch = limits.max_batch.max(1);
        let batch_wait = limits.batch_wait;
        let continuous = limits.continuous;
        std::thread::Builder::new()
            .name("aurl-engine".into())
            .spawn(move || {
                let tokenizer = match vocabulary.scheme().tokenizer(vocabulary.config()) {
                    Ok(t) => t,
                    Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                };
                let generator = match Generator::for_model(&model, config) {
                    Ok(g) => g,
                    Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
                };
                let _ = ready_tx.send(Ok(()));
                let worker = Worker {
                    model: &model,
                    generator,
                    tokenizer: tokenizer.as_ref(),
                    vocabulary: &vocabulary,
                    device,
                    metrics: &thread_metrics,
                    max_batch,
                    batch_wait,
                    shards: workers.max(1),
                };
                if continuous && Continuous::supports(&worker.generator) {
                    return worker.serve_continuous(jobs);
                }
                worker.serve_batches(jobs);
            })?;
        ready_rx.recv()??;
        Ok(Self {
            queue,
            info,
            limits,
            metrics,
        })
    }

    /// Queues `spec`.
    ///
    /// # Errors
    /// A 429 [`ApiError`] (with `Retry-After`) when the queue is full; a 503 when the
    /// engine has stopped.
    pub fn submit(&self, spec: GenerateSpec) -> Result<Submitted, ApiError> {
        let (events, receiver) = mpsc::unbounded_channel();
        let cancel = CancelToken::default();
        let job = Job {
            spec,
            events,
            cancel: cancel.clone(),
            queued: Instant::now(),
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                self.metrics.queued(1);
                Ok(Submitted {
                    events: receiver,
                    cancel,
                })
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.outcome("rejected");
                Err(ApiError {
                    retry_after: Some(1),
                    ..ApiError::status(429, "the queue is full; retry later")
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(ApiError::status(503, "the engine has stopped"))
            }
        }
    }

    /// The model served.
    #[must_use]
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The server's counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

fn model_info(model: &Generative, weights: WeightFormat) -> ModelInfo {
    use aurl::burn::module::Module;
    let vocabulary = model.vocabulary();
    let (kind, parameters) = match model {
        Generative::Transformer(m) => ("transformer", m.model.num_params()),
        Generative::Vae(m) => ("vae", m.model.num_params()),
    };
    let control_tokens = BarControl::names(vocabulary);
    ModelInfo {
        kind: kind.into(),
        scheme: vocabulary.scheme().to_string(),
        vocab_size: vocabulary.len(),
        parameters,
        context_length: model.max_seq_len(),
        latent: model.vae().is_some(),
        control_tokens,
        weights: weights.to_string(),
    }
}

/// The engine thread's state.
struct Worker<'m> {
    model: &'m Generative,
    generator: Generator<'m>,
    tokenizer: &'m dyn Tokenizer,
    vocabulary: &'m Vocabulary,
    device: Device,
    metrics: &'m Metrics,
    max_batch: usize,
    batch_wait: Duration,
    /// Continuous batches stepped at once (each on its own core).
    shards: usize,
}

/// A job's requests, ready to decode.
struct Prepared {
    job: Job,
    requests: Vec<Request>,
}

impl Worker<'_> {
    /// Decodes fixed batches until every [`Engine`] handle is dropped.
    fn serve_batches(&self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            // Requests that come in together (clients answered by the last batch send their
            // next request at once) are gathered for `batch_wait` before decoding starts.
            let deadline = Instant::now() + self.batch_wait;
            let mut batch = Vec::new();
            let mut rows = 0;
            let mut next = Some(first);
            loop {
                if let Some(job) = next.take() {
                    self.metrics.queued(-1);
                    if let Some(prepared) = self.prepare(job) {
                        rows += prepared.requests.len();
                        batch.push(prepared);
                    }
                }
                if rows >= self.max_batch {
                    break;
                }
                match jobs.try_recv() {
                    Ok(job) => next = Some(job),
                    Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.metrics.batch(rows);
                self.decode(batch);
            }
        }
    }

    /// `job`'s requests, or `None` after answering it (bad input, gone, timed out).
    fn prepare(&self, job: Job) -> Option<Prepared> {
        // The handler counted it when its client left.
        if job.events.is_closed() || job.cancel.is_cancelled() {
            return None;
        }
        match self.requests(&job.spec, &job.cancel) {
            Ok(requests) => Some(Prepared { job, requests }),
            Err(e) => {
                self.metrics.outcome("bad_request");
                let _ = job.events.send(Event::Done(Err(e)));
                None
            }
        }
    }

    /// The requests of `spec`: one piece, or an interpolation's pieces.
    fn requests(
        &self,
        spec: &GenerateSpec,
        cancel: &CancelToken,
    ) -> Result<Vec<Request>, ApiError> {
        let prompt = match &spec.prompt_midi {
            Some(bytes) => {
                prompt_from_midi_bytes(bytes, self.tokenizer, self.model.max_seq_len() / 2)
                    .map_err(|e| ApiError::field("prompt_midi", e.to_string()))?
            }
            None => Vec::new(),
        };
        let controls = spec
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                BarControl::parse(c, self.vocabulary)
                    .map_err(|e| ApiError::field(format!("controls[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A known token that is not a control fails here, not the batch it would join.
        BarControl::validate(&controls, self.vocabulary)
            .map_err(|e| sampling_error("controls", e))?;
        let template = Request {
            prompt,
            max_new_tokens: spec.tokens,
            max_bars: spec.bars,
            max_seconds: spec.seconds,
            seed: spec.seed,
            latent: None,
            controls,
            strategy: Some(spec.strategy.clone()),
            constrained: Some(spec.constrained),
            min_new_tokens: Some(spec.min_tokens),
            cancel: Some(cancel.clone()),
        };
        let codes = match &spec.interpolate {
            Some(([a, b], steps)) => Some(
                interpolation_from_midi_bytes(self.model, [a, b], *steps, &self.device)
                    .map_err(|e| sampling_error("interpolate", e))?,
            ),
            None => self.model.prior_codes(1, spec.seed, &self.device),
        };
        let count = spec.interpolate.as_ref().map_or(1, |(_, steps)| *steps);
        Ok(template.repeated(count, codes.as_deref()))
    }

    /// Decodes `batch` as one; on a failure, each job alone — but a job that was already
    /// streamed notes fails instead (a retry would stream them twice).
    fn decode(&self, batch: Vec<Prepared>) {
        let started = Instant::now();
        let mut streamed = vec![false; batch.len()];
        let result = self.run(&batch, &mut streamed);
        self.metrics.busy(started.elapsed().as_secs_f64());
        match result {
            Ok(pieces) => self.answer(&batch, pieces, started),
            Err(e) => {
                let several = batch.len() > 1;
                for (one, streamed) in batch.into_iter().zip(streamed) {
                    if several && !streamed {
                        self.decode(vec![one]);
                    } else {
                        self.metrics.outcome("failed");
                        let _ = one.job.events.send(Event::Done(Err(e.clone())));
                    }
                }
            }
        }
    }

    /// Generates every request of `batch`, sending notes as they complete (and marking in
    /// `streamed` the jobs that got some).
    fn run(&self, batch: &[Prepared], streamed: &mut [bool]) -> Result<Vec<Generated>, ApiError> {
        let requests: Vec<Request> = batch.iter().flat_map(|p| p.requests.clone()).collect();
        // Row → (job, piece of the job).
        let owners: Vec<(usize, usize)> = batch
            .iter()
            .enumerate()
            .flat_map(|(j, p)| (0..p.requests.len()).map(move |k| (j, k)))
            .collect();
        let generated = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.generator.generate_streaming(&requests, |event| {
                self.metrics.tokens(1);
                let (index, piece) = owners[event.request];
                let job = &batch[index].job;
                if job.events.is_closed() {
                    job.cancel.cancel();
                } else if let Some(note) = event.note {
                    streamed[index] = true;
                    let _ = job.events.send(Event::Note { piece, note });
                }
            })
        }));
        match generated {
            Ok(Ok(pieces)) => Ok(pieces),
            Ok(Err(e)) => Err(sampling_error("request", e)),
            Err(panic) => Err(panicked(&panic)),
        }
    }

    /// Sends each job its pieces as MIDI.
    fn answer(&self, batch: &[Prepared], pieces: Vec<Generated>, started: Instant) {
        let mut pieces = pieces.into_iter();
        for prepared in batch {
            let job = &prepared.job;
            let mine: Vec<Generated> = pieces.by_ref().take(prepared.requests.len()).collect();
            let result = mine
                .iter()
                .zip(&prepared.requests)
                .map(|(g, r)| {
                    let (midi, summary) = piece_midi(g, self.tokenizer)
                        .map_err(|e| ApiError::status(500, e.to_string()))?;
                    Ok(Piece {
                        midi,
                        summary,
                        seed: r.seed,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>();
            // A cancelled request was counted by its handler (client gone, or timed out).
            if !job.cancel.is_cancelled() {
                self.metrics
                    .outcome(if result.is_ok() { "ok" } else { "failed" });
            }
            self.metrics.latency(
                job.queued.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64(),
            );
            let _ = job.events.send(Event::Done(result));
        }
    }
}

/// The 500 a panic while decoding answers (and logs).
fn panicked(panic: &Box<dyn std::any::Any + Send>) -> ApiError {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(%what, "decoding panicked");
    ApiError::status(500, format!("decoding failed: {what}"))
}

/// A [`SamplingError`] as the API reports it: the client's fault (4xx) when it names an
/// input, the server's otherwise.
fn sampling_error(field: &str, e: SamplingError) -> ApiError {
    match e {
        SamplingError::InvalidConfig { field, reason } => ApiError::field(field, reason),
        SamplingError::InvalidPrompt { .. } => ApiError::field("prompt_midi", e.to_string()),
        SamplingError::InvalidMidi { what, reason } => {
            let what = if what == "prompt" {
                "prompt_midi".into()
            } else {
                what
            };
            ApiError::field(what, reason)
        }
        other => {
            let _ = field;
            ApiError::status(500, other.to_string())
        }
    }
}
