"""Builds the tiny random-initialised checkpoints in tests/data/tiny/ and the logits that
Hugging Face transformers (PyTorch, fp32, CPU) gives on fixed token sequences.

These are the forward-pass oracles: an implementation that is not ours. Each architecture the
crate supports gets one folder (config.json, model.safetensors, tokenizer.json) and one
`<name>.logits.bin` (QSOR format, see make_oracles.py) holding
  ids      f32[B*T]        the input token ids (B rows of T tokens; exact small integers)
  shape    f32[3]          B, T, V
  logits   f32[B*T*V]      transformers' logits
  nll      f32[1]          mean next-token NLL over the B*(T-1) predictions
T is each model's maximum context (max_position_embeddings), B = 2.

Run from the repository root with a venv holding torch, transformers and tokenizers:
    python scripts/make_tiny_models.py
"""
import json
import struct
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tiny"
VOCAB = 96
CTX = 48

# Public-domain text (Jane Austen, Pride and Prejudice, 1813) for the tokenizer and eval tests.
TEXT = """It is a truth universally acknowledged, that a single man in possession of a good fortune,
must be in want of a wife. However little known the feelings or views of such a man may be on
his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding
families, that he is considered as the rightful property of some one or other of their
daughters. "My dear Mr. Bennet," said his lady to him one day, "have you heard that Netherfield
Park is let at last?" Mr. Bennet replied that he had not. "But it is," returned she; "for Mrs.
Long has just been here, and she told me all about it." Mr. Bennet made no answer. "Do not you
want to know who has taken it?" cried his wife impatiently. "You want to tell me, and I have no
objection to hearing it." This was invitation enough. "Why, my dear, you must know, Mrs. Long
says that Netherfield is taken by a young man of large fortune from the north of England; that
he came down on Monday in a chaise and four to see the place, and was so much delighted with it
that he agreed with Mr. Morris immediately; that he is to take possession before Michaelmas,
and some of his servants are to be in the house by the end of next week."
"""


def write_qsor(path, arrays):
    buf = bytearray(b"QSOR")
    buf += struct.pack("<I", len(arrays))
    for key, arr in arrays.items():
        kb = key.encode()
        arr = arr.detach().to(torch.float32).contiguous().reshape(-1)
        buf += struct.pack("<I", len(kb)) + kb
        buf += struct.pack("<BI", 0, arr.numel()) + arr.numpy().astype("<f4").tobytes()
    path.write_bytes(bytes(buf))
    print(f"wrote {path.relative_to(ROOT)}: {len(buf)} bytes")


def tokenizer(bos):
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    special = ["<unk>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=special, show_progress=False)
    tok.train_from_iterator([TEXT], trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
        )
    return tok


def build(name, model, bos):
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.float32).eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer(bos).save(str(folder / "tokenizer.json"))
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, model.config.vocab_size, (2, CTX), generator=g)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    logp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None]).mean()
    shape = torch.tensor([ids.shape[0], ids.shape[1], logits.shape[-1]])
    write_qsor(OUT / f"{name}.logits.bin", {"ids": ids, "shape": shape, "logits": logits, "nll": nll.reshape(1)})
    cfg = json.loads((folder / "config.json").read_text())
    print(f"  {name}: {cfg['architectures']} params={sum(p.numel() for p in model.parameters())}")


def main():
    torch.manual_seed(20261123)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sample.txt").write_text(TEXT)  # the eval tests' held-out text
    # A large init scale so that logits are far from uniform and every op matters.
    common = dict(initializer_range=0.25, vocab_size=VOCAB, max_position_embeddings=CTX, bos_token_id=1, eos_token_id=2)
    # Llama with grouped-query attention, tied embeddings and a non-default RoPE theta.
    llama = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                        rope_theta=5000.0, tie_word_embeddings=True, **common)
    build("llama", LlamaForCausalLM(llama), bos=True)
    # Qwen2: q/k/v biases, untied head, GQA.
    qwen = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-6,
                       rope_theta=10000.0, tie_word_embeddings=False, **common)
    m = Qwen2ForCausalLM(qwen)
    with torch.no_grad():  # random biases, so a missing bias cannot pass unnoticed
        for layer in m.model.layers:
            for lin in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                lin.bias.normal_(0, 0.5)
    build("qwen2", m, bos=True)
    # GPT-2: Conv1D weights, learned positions, gelu_new.
    gpt2 = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_inner=None, vocab_size=VOCAB,
                      n_positions=CTX, bos_token_id=2, eos_token_id=2, initializer_range=0.25)
    m = GPT2LMHeadModel(gpt2)
    with torch.no_grad():
        for p in m.parameters():  # non-trivial norms and biases
            if p.dim() == 1:
                p.normal_(0.5, 0.3)
    build("gpt2", m, bos=False)
    # Pythia-style GPT-NeoX: fused QKV, partial rotary, parallel residual, exact GELU.
    neox = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, rotary_pct=0.5, use_parallel_residual=True,
                         layer_norm_eps=1e-5, tie_word_embeddings=False, **common)
    m = GPTNeoXForCausalLM(neox)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1:
                p.normal_(0.5, 0.3)
    build("gpt_neox", m, bos=False)
    # GPT-NeoX with the sequential residual (some non-Pythia checkpoints).
    neox_seq = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, rotary_pct=1.0, use_parallel_residual=False,
                             layer_norm_eps=1e-5, tie_word_embeddings=False, **common)
    build("gpt_neox_seq", GPTNeoXForCausalLM(neox_seq), bos=False)


if __name__ == "__main__":
    main()
