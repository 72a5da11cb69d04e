"""Cross-checks `quantscape convert` against transformers' own GGUF loader.

    python scripts/check_gguf_transformers.py SmolLM2-135M-Instruct.Q4_1.gguf CONVERTED_DIR

transformers dequantizes the GGUF (through the `gguf` package) and un-permutes Q/K itself; every
tensor of our export must match it, and the tokenizers must agree on sample text.
Needs: pip install torch transformers gguf safetensors.
"""
import sys, os
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

gguf_path, ours_dir = sys.argv[1], sys.argv[2]
d, f = os.path.split(os.path.abspath(gguf_path))
ref = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
ours = load_file(os.path.join(ours_dir, "model.safetensors"))
sd = ref.state_dict()
worst = 0.0
for name, t in ours.items():
    r = sd[name]
    diff = (t - r).abs().max().item()
    worst = max(worst, diff)
    assert diff < 1e-6, f"{name}: max |diff| {diff}"
print(f"{len(ours)} tensors match transformers' GGUF loader (max |diff| {worst:.2e})")
tok_ref = AutoTokenizer.from_pretrained(d, gguf_file=f)
tok_ours = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ours_dir, "tokenizer.json"))
for text in ["It is a truth universally acknowledged, 1811 and 12345.", "  spaces\n\nand\tTabs <|im_start|>user"]:
    a = tok_ref(text, add_special_tokens=False)["input_ids"]
    b = tok_ours(text, add_special_tokens=False)["input_ids"]
    assert a == b, f"{text!r}: {a} vs {b}"
print("tokenizers agree")
