"""End-to-end PyTorch baseline for `quantscape eval` (issue 26): loads a Hugging Face folder
with transformers (fp32), scores N windows of CTX tokens (NLL only: log-softmax + gather, in
batches of 4) on THREADS threads and prints the wall seconds of the scoring loop and of the
whole process so far. Run it for two window counts; the difference cancels loading.

    python scripts/e2e_torch_nll.py MODEL_DIR N_WINDOWS [CTX=512] [THREADS=2]
"""
import sys
import time

t_start = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM

d, n = sys.argv[1], int(sys.argv[2])
ctx = int(sys.argv[3]) if len(sys.argv) > 3 else 512
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
torch.set_num_threads(threads)
m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
g = torch.Generator().manual_seed(0)
ids = torch.randint(0, m.config.vocab_size, (n, ctx), generator=g)
t0 = time.perf_counter()
tot = 0.0
with torch.inference_mode():
    for w in range(0, n, 4):
        x = ids[w:w + 4]
        lp = torch.log_softmax(m(input_ids=x).logits[:, :-1].float(), -1)
        tot += -lp.gather(-1, x[:, 1:, None]).sum().item()
t1 = time.perf_counter()
print(f"scoring {t1 - t0:.2f} s, process {t1 - t_start:.2f} s, mean NLL {tot / (n * (ctx - 1)):.4f}")
