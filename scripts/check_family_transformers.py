"""Checks that transformers loads a quantscape-trained folder and measures the same loss.

    quantscape eval --model DIR --data sample.txt --ctx 128 --windows 100000 --json > ours.json
    python scripts/check_family_transformers.py DIR sample.txt ours.json

Windows as quantscape cuts them: [BOS] + 127 text tokens, non-overlapping from the start (all
candidates when --windows exceeds them). Needs: pip install torch transformers.
"""
import json, sys
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

model_dir, text_path, ours_path = sys.argv[1:4]
ctx = 128
tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
ids = tok(open(text_path, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
bos = 0
n = (len(ids) - (ctx - 1)) // (ctx - 1) + 1
total, count = 0.0, 0
with torch.no_grad():
    for w in range(n):
        window = [bos] + ids[w * (ctx - 1): w * (ctx - 1) + ctx - 1]
        x = torch.tensor([window])
        logp = torch.log_softmax(model(x).logits[0].float(), -1)
        tgt = x[0, 1:]
        total += -logp[:-1].gather(1, tgt[:, None]).sum().item()
        count += len(tgt)
ours = json.load(open(ours_path))
nll_ours = ours["report"]["nll_base"]
print(f"transformers NLL {total / count:.6f} over {count} tokens; quantscape {nll_ours:.6f}")
assert abs(total / count - nll_ours) < 1e-3, "mismatch"
print("OK")
