//! Safetensors reading: dtypes, shards, and malformed files that must be errors naming the file.

use quantscape::model::checkpoint::{Checkpoint, DType};

use crate::util::tiny_checkpoint;

#[test]
fn reads_f32_f16_bf16_and_lists_tensors() {
    for dt in ["F32", "F16", "BF16"] {
        let dir = tempfile::tempdir().unwrap();
        tiny_checkpoint(dir.path(), dt);
        let c = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(c.model_type(), "llama");
        assert_eq!(c.tensors.len(), 1 + 2 * 9 + 2);
        let e = &c.tensors["model.layers.0.mlp.down_proj.weight"];
        assert_eq!(e.shape, vec![48, 100]);
        assert_eq!(e.dtype.name(), dt);
        let v = c.read_f32("model.layers.0.mlp.down_proj.weight").unwrap();
        assert_eq!(v.len(), 4800);
        assert!(v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0));
        assert!(matches!(e.dtype, DType::F32 | DType::F16 | DType::BF16));
    }
}

#[test]
fn malformed_headers_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.safetensors");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", vec![]),
        ("truncated length", vec![1, 2, 3]),
        ("header longer than file", {
            let mut b = 1000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            b
        }),
        ("not json", {
            let mut b = 4u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"abcd");
            b
        }),
        ("forged shape", {
            let h =
                br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#;
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(h);
            b.extend_from_slice(&[0u8; 16]);
            b
        }),
        ("offsets past the end", {
            let h = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(h);
            b.extend_from_slice(&[0u8; 8]);
            b
        }),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
    ];
    for (what, bytes) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let err = match Checkpoint::open(dir.path()) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("model.safetensors"),
            "{what}: `{err}` does not name the file"
        );
    }
}

#[test]
fn sharded_index_is_followed_and_checked() {
    use quantscape::model::checkpoint::{f32_to_bytes, write_safetensors, OutTensor};
    let dir = tempfile::tempdir().unwrap();
    let t = |name: &str| OutTensor {
        name: name.into(),
        dtype: DType::F32,
        shape: vec![2, 2],
        data: f32_to_bytes(&[1.0, 2.0, 3.0, 4.0], DType::F32).unwrap(),
    };
    write_safetensors(
        &dir.path().join("model-00001-of-00002.safetensors"),
        &[t("a.layers.0.q.weight")],
        None,
    )
    .unwrap();
    write_safetensors(
        &dir.path().join("model-00002-of-00002.safetensors"),
        &[t("a.layers.1.q.weight")],
        None,
    )
    .unwrap();
    let index = r#"{"metadata":{},"weight_map":{"a.layers.0.q.weight":"model-00001-of-00002.safetensors","a.layers.1.q.weight":"model-00002-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let c = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(c.files.len(), 2);
    assert_eq!(
        c.read_f32("a.layers.1.q.weight").unwrap(),
        vec![1.0, 2.0, 3.0, 4.0]
    );
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = Checkpoint::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains("missing") && err.contains("index.json"),
        "{err}"
    );
}
