"""Speed of a code model on this CPU: prompt and generation tokens per second, seconds per call, and what
keeping a repeated prompt's prefix cache saves.

    python benchmarks/code_model_speed.py --model qwen2.5-coder-0.5b --threads 1 2 --tasks 8 --draws 3

For each thread count: greedy replies to the first `--tasks` HumanEval+ prompts (the loop's depth-0 chat
prompt), with llama.cpp's own counters for the prompt and the generation phases; then `--draws` sampled replies
(temperature 0.8, as the resampling baseline draws) to each prompt, once with the prefix cache kept between
draws and once computed from an empty cache every time, alternating which goes first. The replies of the two
must be identical (the cache changes time, never text); the script stops with an error if they are not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def _perf(be):
    import llama_cpp

    return llama_cpp.llama_perf_context(be.llm._ctx.ctx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "code")
    args = ap.parse_args()

    import llama_cpp

    from recursia.code import prompts
    from recursia.code.backends import GenerationConfig, LlamaCppBackend
    from recursia.code.models import gguf_path
    from recursia.code.tasks import load_tasks

    path = gguf_path(args.model)
    tasks = load_tasks("humaneval+", args.data)[: args.tasks]
    print(f"{args.model} ({path.name}), {len(tasks)} HumanEval+ prompts, load {os.getloadavg()[0]:.2f}")
    for threads in args.threads:
        be = LlamaCppBackend(path, gen=GenerationConfig(max_tokens=384), threads=threads)
        asks = [prompts.initial(t, be.mode)[0] for t in tasks]
        p_ms = g_ms = 0.0
        p_n = g_n = 0
        walls = []
        for ask in asks:
            be._prefix = None
            llama_cpp.llama_perf_context_reset(be.llm._ctx.ctx)
            r = be.generate(ask, temperature=0.0, seed=0)
            d = _perf(be)
            p_ms, g_ms, p_n, g_n = p_ms + d.t_p_eval_ms, g_ms + d.t_eval_ms, p_n + d.n_p_eval, g_n + d.n_eval
            walls.append(r.seconds)
        print(f"threads {threads}: prompt {p_n} tokens at {1000 * p_n / p_ms:.0f} tok/s, generation {g_n} tokens "
              f"at {1000 * g_n / g_ms:.1f} tok/s, {statistics.mean(walls):.2f} s per greedy call "
              f"(median {statistics.median(walls):.2f})")
        times = {True: [], False: []}
        for i, ask in enumerate(asks):
            texts = {}
            for reuse in ((True, False) if i % 2 == 0 else (False, True)):
                be.reuse_prefix, be._prefix = reuse, None
                start = time.perf_counter()
                texts[reuse] = [be.generate(ask, temperature=0.8, seed=s).text for s in range(1, args.draws + 1)]
                times[reuse].append(time.perf_counter() - start)
            if texts[True] != texts[False]:
                raise SystemExit(f"task {tasks[i].task_id}: the prefix cache changed a reply")
        kept, cold = sum(times[True]), sum(times[False])
        n = len(asks) * args.draws
        print(f"threads {threads}: {args.draws} draws per prompt: {cold / n:.2f} s per call from an empty cache, "
              f"{kept / n:.2f} s with the prefix kept ({cold / kept:.2f}x), identical replies")
        be.close()
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
