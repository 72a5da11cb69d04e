//! The bounded-size rules of `quantscape::limits` as properties: configs, RoPE tables, caps.

use proptest::prelude::*;
use quantscape::limits;
use quantscape::model::config::ArchConfig;

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..4096, any::<u64>(), (0u32..64).prop_map(|e| 1u64 << e)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever sizes a config claims, an accepted config is within every sane range and
    /// self-consistent; everything else is an error naming config.json.
    #[test]
    fn accepted_configs_are_within_bounds(
        vocab in size(), hidden in size(), layers in size(), heads in size(),
        kv in size(), inter in size(), pos in size(), eps in -1.0f64..1.5, theta in -10.0f64..1e7,
    ) {
        let v = serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "vocab_size": vocab, "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "intermediate_size": inter,
            "max_position_embeddings": pos, "rms_norm_eps": eps, "rope_theta": theta,
        });
        match ArchConfig::from_json(&v, std::path::Path::new("config.json")) {
            Ok(c) => {
                prop_assert!(c.vocab_size <= limits::VOCAB.max && c.vocab_size > 0);
                prop_assert!(c.hidden_size <= limits::HIDDEN.max);
                prop_assert!((1..=limits::LAYERS.max).contains(&c.n_layers));
                prop_assert!(c.n_heads <= limits::HEADS.max && c.n_heads % c.n_kv_heads == 0);
                prop_assert!((1..=limits::HEAD_DIM.max).contains(&c.head_dim));
                prop_assert!(c.intermediate_size <= limits::INTERMEDIATE.max);
                prop_assert!(c.max_positions <= limits::POSITIONS.max);
                prop_assert!(c.norm_eps > 0.0 && c.norm_eps < 1.0);
                prop_assert!(c.rope_theta > 0.0 && c.rope_theta.is_finite());
            }
            Err(e) => prop_assert!(e.to_string().contains("config.json"), "{e}"),
        }
    }

    /// A cap accepts exactly the values up to its maximum.
    #[test]
    fn caps_accept_exactly_up_to_their_maximum(v in any::<usize>()) {
        for cap in [limits::TOP_K, limits::RESAMPLES, limits::WINDOWS, limits::CTX,
                    limits::TRIALS, limits::FIT_BOOTSTRAP, limits::GRID, limits::TREES] {
            prop_assert_eq!(cap.check(v).is_ok(), v <= cap.max);
        }
    }
}

proptest! {
    // Each case builds tables of up to 2 × 64 MiB.
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The RoPE tables never exceed their element cap, whatever the head width and context.
    #[test]
    fn rope_tables_are_bounded(half in prop_oneof![1usize..=128, 128usize..=2048], pos in prop_oneof![1usize..4096, 4096usize..(1 << 24)]) {
        let r = quantscape::model::layers::Rope::new(
            2 * half, 10_000.0, pos, &candle_core::Device::Cpu,
        ).unwrap();
        let (cos, _) = r.tables().unwrap();
        prop_assert!(cos.len() <= limits::ROPE_TABLE_ELEMENTS);
        prop_assert_eq!(cos.len() % half, 0);
        // Rows: the context asked for, unless the caps say fewer.
        let rows = cos.len() / half;
        prop_assert_eq!(
            rows,
            pos.min(limits::ROPE_TABLE_POSITIONS).min(limits::ROPE_TABLE_ELEMENTS / half)
        );
    }
}
