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
//! | pareto | [`pareto::ParetoRequest`] + N, Qr | [`pareto::ParetoReport`] | [`pareto::prepare`], [`pareto::Prepared::report`] |
//! | sweep | [`crate::search::spec::SweepSpec`] | [`crate::search::runner::RunSummary`] | [`sweep::run`] |
//! | landscape | [`crate::landscape::Request`] | [`crate::landscape::Slice`] | [`crate::landscape::compute`] |
//! | hessian | [`crate::landscape::hessian::HessianRequest`] | [`crate::landscape::hessian::HessianReport`] | [`crate::landscape::hessian::report`] |
//! | features | [`crate::landscape::features::FeatureRequest`] | [`crate::landscape::features::Features`] | [`crate::landscape::features::measure`] |
//! | train | [`crate::train::recipe::FamilyRecipe`] runs | [`crate::train::RunReport`] | [`crate::train::Run::train`] |
//!
//! The last four already had one typed request and one entry point in their own module (which
//! the CLI and the Landscape view both call), so they stay there.
//!
//! Where work runs is the request's [`engine::Device`]; [`engine::shared_gpu`] is the process's
//! one GPU context. Dependency rule: `tasks` uses every library module below it and nothing above
//! (`app`, the CLI).

pub mod calibrate;
pub mod engine;
pub mod evaluate;
pub mod fit;
pub mod pareto;
pub mod quantize;
pub mod sweep;

pub use engine::{Device, Engine};
