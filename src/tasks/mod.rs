//! The task layer: one typed, validated request per action and one `run(&Request, &JobCtx) ->
//! Result<Report>` that reports progress (`JobCtx::report`) and honours cancel. The CLI handlers
//! parse flags into a request, run it inline and print the report; the explorer's panels build
//! the same request from their controls, spawn it as a job and draw the report. So one request
//! gives one report whichever face asked (tests/tasks.rs holds us to it).
//!
//! | action | request | report | entry point |
//! |---|---|---|---|
//! | quantize | [`quantize::QuantizeRequest`] | [`quantize::QuantizeReport`] | [`quantize::run`] |
//! | evaluate | [`evaluate::EvalRequest`] | [`evaluate::EvalReport`] | [`evaluate::run`] |
//! | fit | [`fit::FitRequest`] | [`fit::FitOutcome`] | [`fit::run`] |
//! | predict | a fit report file | law + values | [`fit::read_fit_report`] |
//! | sweep | [`crate::search::spec::SweepSpec`] | [`crate::search::runner::RunSummary`] | [`sweep::run`] |
//! | landscape | [`crate::landscape::LandscapeRequest`] | [`crate::landscape::Landscape`] | [`crate::landscape::compute`] |
//!
//! Where work runs is the request's [`engine::Device`]; [`engine::shared_gpu`] is the process's
//! one GPU context. Dependency rule: `tasks` uses every library module below it and nothing above
//! (`app`, the CLI).

pub mod calibrate;
pub mod engine;
pub mod evaluate;
pub mod fit;
pub mod quantize;
pub mod sweep;

pub use engine::{Device, Engine};
