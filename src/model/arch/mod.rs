//! One file per architecture family: how its checkpoint names and shapes map onto
//! [`crate::model::transformer::Transformer`]. Each `load` reads tensors only through the
//! [`crate::model::transformer::Loader`], which checks every shape against `config.json`.

pub mod gpt2;
pub mod gpt_neox;
pub mod llama;
