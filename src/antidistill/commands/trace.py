"""``antidistill trace`` (attribute leaked text to accounts) and ``antidistill watermark ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

SECRET_ENV = "ANTIDISTILL_WM_SECRET"

_SECRET = typer.Option(None, "--secret", envvar=SECRET_ENV, show_envvar=True,
                       help="Master watermark secret (prefer the environment variable).")
_TOKENIZER = typer.Option(None, "--tokenizer", help="Directory of the serving model's tokenizer "
                          "(tokenizer.json). Default: the corpora-trained local tokenizer.")
_GAMMA = typer.Option(0.25, help="Green share gamma used at generation.")
_WIDTH = typer.Option(1, "--context-width", help="Context window width used at generation.")
_ACCOUNT = typer.Option(..., "--account", help="Account id whose key to test.")
_EPOCH = typer.Option(0, "--epoch", help="Key epoch.")


def _secret(value: str | None) -> str:
    from antidistill.errors import ConfigError

    if not value:
        raise ConfigError(f"no watermark secret: pass --secret or set {SECRET_ENV}")
    return value


def _read_text(path: Path) -> str:
    from antidistill.errors import InputError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read text: {exc}".splitlines()[0], where=str(path)) from exc
    if not text.strip():
        raise InputError("the file is empty", where=str(path))
    return text


def read_accounts(path: Path) -> list[str]:
    """Account ids, one per line; blank lines and ``#`` comments are skipped."""
    from antidistill.errors import InputError

    seen: dict[str, int] = {}
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        acct = line.split("#", 1)[0].strip()
        if not acct:
            continue
        if acct in seen:
            raise InputError(f"duplicate account id {acct!r} (first on line {seen[acct]})",
                             where=f"{path}:{n}", field="account_id")
        seen[acct] = n
    if not seen:
        raise InputError("no account ids in the file", where=str(path))
    return list(seen)


def _tokenizer(path: Path | None) -> Any:
    from antidistill.watermark import tinymodels

    return tinymodels.load_tokenizer(path) if path else tinymodels.corpus_tokenizer()


def _epochs(epoch: int, previous: int) -> list[int]:
    return [epoch - i for i in range(previous + 1) if epoch - i >= 0]


def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def register(app: typer.Typer) -> None:
    @app.command("trace")
    def trace(
        text_file: Path = typer.Argument(..., help="Leaked text (UTF-8)."),
        accounts: Path = typer.Option(..., "--accounts", help="Account ids, one per line."),
        secret: str | None = _SECRET,
        tokenizer: Path | None = _TOKENIZER,
        epoch: int = typer.Option(0, help="Current key epoch (0 until keys are rotated)."),
        previous_epochs: int = typer.Option(1, help="Also test this many earlier epochs."),
        alpha: float = typer.Option(1e-3, help="Family-wise error rate across all keys."),
        method: str = typer.Option("holm", help="holm or bonferroni."),
        top: int = typer.Option(5, help="Candidates to show."),
        gamma: float = _GAMMA,
        context_width: int = _WIDTH,
    ) -> None:
        """Attribute leaked text to the accounts whose watermark key explains it."""
        from rich.console import Console
        from rich.table import Table

        from antidistill.errors import InputError
        from antidistill.watermark.attribute import attribute_tokens
        from antidistill.watermark.detect import encode
        from antidistill.watermark.greenlist import WatermarkConfig
        from antidistill.watermark.keys import KeyRing

        if method not in ("holm", "bonferroni"):
            raise InputError("must be 'holm' or 'bonferroni'", field="--method")
        key_secret = _secret(secret)
        text = _read_text(text_file)
        ids = read_accounts(accounts)
        console = Console()
        with console.status("deriving keys and tokenising"):
            ring = KeyRing.build(key_secret, ids, _epochs(epoch, previous_epochs))
            tokens = encode(_tokenizer(tokenizer), text)
        res = attribute_tokens(tokens, ring, WatermarkConfig(gamma=gamma,
                               context_width=context_width), alpha=alpha,
                               method=method, top=top)  # type: ignore[arg-type]
        table = Table(title=f"{text_file.name}: {res.n_tokens} tokens, {res.n_scored} distinct "
                      f"scored pairs, {res.n_keys} keys ({len(ids)} accounts), {method} "
                      f"alpha={alpha:g}")
        for col in ("account", "epoch", "key id", "green", "z", "p", "p adjusted", "attributed"):
            table.add_column(col, justify="left" if col in ("account", "key id") else "right")
        for c in res.candidates:
            table.add_row(c.account_id, str(c.epoch), c.key_id, f"{c.n_green}/{c.n_scored}",
                          f"{c.z:.1f}", _fmt_p(c.p_value), _fmt_p(c.p_adjusted),
                          "[bold red]yes[/]" if c.significant else "no")
        console.print(table)
        if not res.attributed:
            console.print("No account's key explains this text at the chosen error rate.")

    wm = typer.Typer(help="Keyed watermarks: detection and radioactivity tests.",
                     no_args_is_help=True)
    app.add_typer(wm, name="watermark")

    @wm.command("detect")
    def detect(
        text_file: Path = typer.Argument(..., help="Text to test (UTF-8)."),
        account: str = _ACCOUNT,
        epoch: int = _EPOCH,
        secret: str | None = _SECRET,
        tokenizer: Path | None = _TOKENIZER,
        gamma: float = _GAMMA,
        context_width: int = _WIDTH,
    ) -> None:
        """Score and exact p-value of one account's watermark in a text."""
        from rich.console import Console

        from antidistill.watermark.detect import score_text
        from antidistill.watermark.greenlist import WatermarkConfig
        from antidistill.watermark.keys import watermark_key

        key = watermark_key(_secret(secret), account, epoch)
        d = score_text(_read_text(text_file), _tokenizer(tokenizer), key,
                       WatermarkConfig(gamma=gamma, context_width=context_width))
        Console().print(f"account={d.account_id} epoch={d.epoch} key_id={d.key_id} "
                        f"tokens={d.n_tokens} scored={d.n_scored} green={d.n_green} "
                        f"z={d.z:.2f} p={_fmt_p(d.p_value)}")

    @wm.command("radioactivity")
    def radioactivity(
        account: str = _ACCOUNT,
        epoch: int = _EPOCH,
        generations: Path | None = typer.Option(
            None, help="Black box: the suspect model's generations, one per line (JSON strings "
            "or plain text)."),
        model: Path | None = typer.Option(
            None, help="Open weights: a transformers causal-LM directory (uses its tokenizer "
            "and the vendored corpora as contexts)."),
        contexts: int = typer.Option(2000, help="Open weights: corpus contexts to run."),
        secret: str | None = _SECRET,
        tokenizer: Path | None = _TOKENIZER,
        gamma: float = _GAMMA,
        context_width: int = _WIDTH,
    ) -> None:
        """Test whether a suspect model was trained on text watermarked with an account's key."""
        import json

        from rich.console import Console

        from antidistill.errors import InputError
        from antidistill.watermark.detect import encode
        from antidistill.watermark.greenlist import WatermarkConfig
        from antidistill.watermark.keys import watermark_key
        from antidistill.watermark.radioactivity import blackbox_test, open_weights_test

        if (generations is None) == (model is None):
            raise InputError("pass exactly one of --generations (black box) or --model")
        key = watermark_key(_secret(secret), account, epoch)
        cfg = WatermarkConfig(gamma=gamma, context_width=context_width)
        if generations is not None:
            tok = _tokenizer(tokenizer)
            texts = []
            for line in _read_text(generations).splitlines():
                if line.strip():
                    try:
                        texts.append(str(json.loads(line)))
                    except json.JSONDecodeError:
                        texts.append(line)
            res = blackbox_test([encode(tok, t) for t in texts], key, cfg)
        else:
            from transformers import AutoModelForCausalLM

            from antidistill.watermark import tinymodels

            assert model is not None
            tok = _tokenizer(tokenizer or model)
            lm = AutoModelForCausalLM.from_pretrained(str(model))
            texts = tinymodels.corpus_texts()[:contexts]
            res = open_weights_test(lm, [encode(tok, t) for t in texts], key, cfg)
        Console().print(f"{res.method}: texts={res.n_texts} tokens={res.n_tokens} "
                        f"distinct_pairs={res.n_scored} green={res.n_green} "
                        f"({res.green_fraction:.3f} vs gamma={gamma}) z={res.z:.2f} "
                        f"p={_fmt_p(res.p_value)}")

    @wm.command("tokenizer")
    def tokenizer_cmd(
        vocab_size: int = typer.Option(4096, help="BPE vocabulary size."),
    ) -> None:
        """Train (or find cached) the local corpora tokenizer and print its directory."""
        from antidistill.watermark import tinymodels

        tok = tinymodels.corpus_tokenizer(vocab_size)
        typer.echo(f"{tok.name_or_path} ({len(tok)} tokens)")
