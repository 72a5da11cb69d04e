//! Background jobs for the explorer and the CLI: long work (loading, quantizing, sweeps, fits
//! with bootstrap, landscapes) runs on its own thread with a progress fraction, a cancel flag
//! and a waker called whenever there is something new to show (the GUI passes
//! `ctx.request_repaint`). The UI thread only polls: it never blocks on a job.
//!
//! A job's closure receives a [`JobCtx`]; it reports `set_progress(done, total)` — or
//! `report(stage, done, total)` to name the stage ("base", "gptq", "trial") — and checks
//! [`JobCtx::check`] between units of work (returning [`Error::Cancelled`] when asked to stop).
//! A panic inside a job becomes an error result, not a crashed app. The CLI runs the same work
//! on its own thread with [`JobCtx::inline`], whose observer draws a progress bar per stage.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};

/// Called when a job has news (progress, a result).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A waker that does nothing (CLI, tests).
pub fn no_waker() -> Waker {
    Arc::new(|| {})
}

/// Sees every `report(stage, done, total)` of an inline job, with the detail of
/// [`JobCtx::report_detail`] (the CLI's progress bars and their messages).
pub type Observer = Arc<dyn Fn(&str, usize, usize, Option<&str>) + Send + Sync>;

/// What a running job sees.
pub struct JobCtx {
    progress: Arc<AtomicU32>,
    cancel: Arc<AtomicBool>,
    stage: Arc<Mutex<String>>,
    waker: Waker,
    observer: Option<Observer>,
}

impl JobCtx {
    /// A context for work run on the caller's thread (the CLI): never cancelled; `observer`
    /// sees every report.
    pub fn inline(observer: Observer) -> Self {
        Self {
            progress: Arc::new(AtomicU32::new(0)),
            cancel: Arc::new(AtomicBool::new(false)),
            stage: Arc::new(Mutex::new(String::new())),
            waker: no_waker(),
            observer: Some(observer),
        }
    }

    /// A context that reports to no one (tests, library callers without progress).
    pub fn quiet() -> Self {
        Self::inline(Arc::new(|_, _, _, _| {}))
    }

    /// Reports `done` of `total` units and wakes the UI.
    pub fn set_progress(&self, done: usize, total: usize) {
        let f = if total == 0 {
            0.0
        } else {
            (done as f32 / total as f32).clamp(0.0, 1.0)
        };
        self.progress.store(f.to_bits(), Ordering::Relaxed);
        (self.waker)();
    }

    /// Reports `done` of `total` units of the stage `stage` (a progress bar per stage in the
    /// CLI; the stage's fraction and name in the explorer).
    pub fn report(&self, stage: &str, done: usize, total: usize) {
        self.report_detail(stage, done, total, None);
    }

    /// [`Self::report`] with a line about the unit just done (a trial's ΔL and configuration).
    pub fn report_detail(&self, stage: &str, done: usize, total: usize, detail: Option<&str>) {
        if let Ok(mut s) = self.stage.lock() {
            if s.as_str() != stage {
                stage.clone_into(&mut s);
            }
        }
        if let Some(o) = &self.observer {
            o(stage, done, total, detail);
        }
        self.set_progress(done, total);
    }

    /// Whether cancellation was requested.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The cancellation flag itself, for library code that polls it (e.g. a fit's bootstrap).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// `Err(Cancelled)` once cancellation was requested.
    pub fn check(&self) -> Result<()> {
        if self.cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A job producing a `T`.
pub struct Job<T> {
    /// What it does, for the progress list.
    pub name: String,
    progress: Arc<AtomicU32>,
    cancel: Arc<AtomicBool>,
    stage: Arc<Mutex<String>>,
    rx: Receiver<Result<T>>,
    started: Instant,
    finished_secs: Option<f64>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread.
    pub fn spawn(
        name: impl Into<String>,
        waker: Waker,
        work: impl FnOnce(&JobCtx) -> Result<T> + Send + 'static,
    ) -> Self {
        let progress = Arc::new(AtomicU32::new(0f32.to_bits()));
        let cancel = Arc::new(AtomicBool::new(false));
        let stage = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = channel();
        let ctx = JobCtx {
            progress: progress.clone(),
            cancel: cancel.clone(),
            stage: stage.clone(),
            waker: waker.clone(),
            observer: None,
        };
        let name = name.into();
        let label = name.clone();
        std::thread::spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(|| work(&ctx)))
                .unwrap_or_else(|_| Err(Error::Numerical(format!("job `{label}` panicked"))));
            // The receiver may be gone (job dropped): nothing to report then.
            let _ = tx.send(out);
            waker();
        });
        Self {
            name,
            progress,
            cancel,
            stage,
            rx,
            started: Instant::now(),
            finished_secs: None,
        }
    }

    /// Progress in [0, 1].
    pub fn progress(&self) -> f32 {
        f32::from_bits(self.progress.load(Ordering::Relaxed))
    }

    /// The stage last reported (empty before the first `report`).
    pub fn stage(&self) -> String {
        self.stage.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The result, once (None while running, and after it was taken).
    pub fn poll(&mut self) -> Option<Result<T>> {
        match self.rx.try_recv() {
            Ok(r) => {
                self.finished_secs = Some(self.started.elapsed().as_secs_f64());
                Some(r)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Seconds since start (or until it finished).
    pub fn elapsed_secs(&self) -> f64 {
        self.finished_secs
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    /// Waits for the result (CLI and tests only; never on the UI thread).
    pub fn wait(self) -> Result<T> {
        self.rx
            .recv()
            .unwrap_or_else(|_| Err(Error::Numerical(format!("job `{}` vanished", self.name))))
    }
}

/// At most one job of a kind (a panel's fit, read, run…): starting another cancels the running
/// one, whose result is then dropped.
pub struct JobSlot<T> {
    job: Option<Job<T>>,
}

impl<T> Default for JobSlot<T> {
    fn default() -> Self {
        Self { job: None }
    }
}

impl<T: Send + 'static> JobSlot<T> {
    /// Starts `work`, cancelling a job already in the slot.
    pub fn start(
        &mut self,
        name: impl Into<String>,
        waker: Waker,
        work: impl FnOnce(&JobCtx) -> Result<T> + Send + 'static,
    ) {
        self.cancel();
        self.job = Some(Job::spawn(name, waker, work));
    }

    /// Progress of the running job, None when idle.
    pub fn running(&self) -> Option<f32> {
        self.job.as_ref().map(Job::progress)
    }

    /// Whether a job runs.
    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Asks the running job to stop.
    pub fn cancel(&self) {
        if let Some(j) = &self.job {
            j.cancel();
        }
    }

    /// The finished job's result, once; a cancelled job finishes silently (None).
    pub fn finished(&mut self) -> Option<Result<T>> {
        let r = self.job.as_mut()?.poll()?;
        self.job = None;
        match r {
            Err(Error::Cancelled) => None,
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn progress_result_and_waker() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let job = Job::spawn(
            "sum",
            Arc::new(move || {
                w.fetch_add(1, Ordering::Relaxed);
            }),
            |ctx| {
                let mut s = 0u64;
                for i in 0..10 {
                    ctx.check()?;
                    s += i;
                    ctx.set_progress(i as usize + 1, 10);
                }
                Ok(s)
            },
        );
        assert_eq!(job.wait().unwrap(), 45);
        // Ten progress wakes, then one after the result is sent (so a woken UI finds it); the
        // last may land just after `wait` returns.
        let t = std::time::Instant::now();
        while wakes.load(Ordering::Relaxed) < 11 {
            assert!(t.elapsed().as_secs() < 10, "no wake after the result");
            std::thread::yield_now();
        }
    }

    #[test]
    fn cancel_and_panic_become_errors() {
        let job: Job<()> = Job::spawn("spin", no_waker(), |ctx| loop {
            ctx.check()?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        });
        job.cancel();
        assert!(matches!(job.wait(), Err(Error::Cancelled)));
        let job: Job<()> = Job::spawn("boom", no_waker(), |_| panic!("boom"));
        let e = job.wait().unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
    }

    #[test]
    fn poll_never_blocks() {
        let mut job: Job<u8> = Job::spawn("slow", no_waker(), |ctx| {
            while !ctx.cancelled() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(7)
        });
        assert!(job.poll().is_none());
        job.cancel();
        let t = Instant::now();
        loop {
            if let Some(r) = job.poll() {
                assert_eq!(r.unwrap(), 7);
                break;
            }
            assert!(t.elapsed().as_secs() < 10);
            std::thread::yield_now();
        }
        assert!(job.elapsed_secs() >= 0.0);
    }
}
