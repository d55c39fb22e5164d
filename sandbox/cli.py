"""``python -m sandbox``: the fake Meta and chat page, with throwaway secrets for one run.

    python -m sandbox [options]                 serve the fake Meta and the chat page
    python -m sandbox run [options] -- CMD...   the same, plus CMD (the bot stack) with the
                                                WHATSAPP_* variables pointed at the sandbox;
                                                Ctrl-C/SIGTERM stops both, and so does CMD ending
    python -m sandbox --print-env               shell exports of one set of throwaway values

With ``BANK_PROVIDER=mono`` or ``plaid`` (and none of that provider's keys) a fake of the
provider runs beside it and the bot command gets its settings (``sandbox.providers``), so
linking a bank goes through the fake's hosted page and its signed webhook.

Refuses to start where ``ENVIRONMENT=production`` or ``SANDBOX_FORBIDDEN=1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence

from sandbox.config import (
    DEFAULT_BOT_WEBHOOK_URL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    SandboxConfig,
    SandboxForbidden,
    check_allowed,
    wanted_provider,
)
from sandbox.fake_meta.app import start_server
from sandbox.providers import RunningProvider, start_fake_provider

log = logging.getLogger("sandbox")

EXIT_FORBIDDEN = 2
EXIT_USAGE = 64
EXIT_COMMAND_NOT_FOUND = 127


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Local WhatsApp sandbox: a fake Meta Cloud API and a WhatsApp-like chat page. "
        "Secrets are generated for each run unless the SANDBOX_* variables or options fix them.",
        epilog="usage with the bot: python -m sandbox run -- make serve",
    )
    parser.add_argument("--host", help=f"address to listen on (SANDBOX_HOST, default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"port to listen on (SANDBOX_PORT, default {DEFAULT_PORT})")
    parser.add_argument(
        "--bot-webhook-url",
        help=f"the bot's WhatsApp webhook (SANDBOX_BOT_WEBHOOK_URL, default {DEFAULT_BOT_WEBHOOK_URL})",
    )
    parser.add_argument("--phone-number-id", help="business phone number id (SANDBOX_PHONE_NUMBER_ID, default random)")
    parser.add_argument("--app-secret", help="app secret that signs webhooks (SANDBOX_APP_SECRET, default random)")
    parser.add_argument("--access-token", help="Graph API bearer token (SANDBOX_ACCESS_TOKEN, default random)")
    parser.add_argument("--verify-token", help="webhook verify token (SANDBOX_VERIFY_TOKEN, default random)")
    parser.add_argument(
        "--status-delay", type=float, default=0.5, help="seconds before each sent/delivered status (default 0.5)"
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=10.0, help="seconds CMD gets to stop before it is killed (default 10)"
    )
    parser.add_argument(
        "--print-env", action="store_true", help="print shell exports for the bot and a later sandbox, then exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _split_command(argv: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """``[serve|run] options [-- command...]`` into (mode, options, command)."""
    args = list(argv)
    mode = "serve"
    if args and args[0] in {"serve", "run"}:
        mode = args.pop(0)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    return mode, args, command


def build_config(options: argparse.Namespace, environ: Mapping[str, str]) -> SandboxConfig:
    return SandboxConfig.from_env(
        environ,
        host=options.host,
        port=options.port,
        bot_webhook_url=options.bot_webhook_url,
        phone_number_id=options.phone_number_id,
        app_secret=options.app_secret,
        access_token=options.access_token,
        verify_token=options.verify_token,
        status_delay=options.status_delay,
    )


def format_exports(config: SandboxConfig) -> str:
    lines = [
        "# Throwaway WhatsApp sandbox values (not Meta credentials), from `python -m sandbox --print-env`.",
        '# eval "$(python -m sandbox --print-env)" exports them for the bot (WHATSAPP_*) and for a',
        "# later `python -m sandbox` (SANDBOX_*), so both sides agree.",
    ]
    for name, value in {**config.bot_environment(), **config.sandbox_environment()}.items():
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def banner(config: SandboxConfig, command: Sequence[str]) -> str:
    if config.generated:
        secrets_line = (
            "THROWAWAY sandbox secrets were generated for this run (secrets.token_hex): "
            f"{', '.join(sorted(config.generated))}.\n"
            "                   They are not Meta credentials and die with this process."
        )
    else:
        secrets_line = "sandbox secrets come from SANDBOX_* / options (they are not Meta credentials)."
    lines = [
        "WhatsApp sandbox: a fake Meta Cloud API for local testing only (nothing leaves this machine)",
        f"  chat page        {config.base_url}/",
        f"  Graph API        {config.graph_api_url}   (WHATSAPP_API_URL)",
        f"  phone number id  {config.phone_number_id}",
        f"  bot webhook      {config.bot_webhook_url}",
        f"  secrets          {secrets_line}",
    ]
    if command:
        lines.append(
            "  bot command      "
            + shlex.join(command)
            + "\n                   runs with WHATSAPP_API_URL, WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_API_TOKEN,"
            "\n                   WHATSAPP_VERIFY_TOKEN and WHATSAPP_APP_SECRET set to these sandbox values"
        )
    else:
        lines.append(
            "  the bot needs    the same values: start it with `python -m sandbox run -- <command>`,"
            '\n                   or eval "$(python -m sandbox --print-env)" in both shells first'
        )
    if config.host not in {"127.0.0.1", "localhost", "::1"}:
        lines.append(
            f"  WARNING          listening on {config.host}: anyone who reaches this port can use the chat page"
            " and the fake Graph API"
        )
    lines.append("Ctrl-C stops the sandbox" + (" and the bot command." if command else "."))
    return "\n".join(lines)


async def _stop_process(process: asyncio.subprocess.Process, first_signal: int, timeout: float) -> None:
    """Signal the command's process group, wait, then SIGTERM and SIGKILL if it lingers."""
    steps = (
        [first_signal, signal.SIGTERM, signal.SIGKILL]
        if first_signal != signal.SIGTERM
        else [signal.SIGTERM, signal.SIGKILL]
    )
    for sig in steps:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # the group was made for this command (start_new_session)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), None if sig == signal.SIGKILL else timeout)


async def serve(config: SandboxConfig, command: Sequence[str] = (), *, stop_timeout: float = 10.0,
                environ: Mapping[str, str] | None = None) -> int:
    """Run the sandbox (and ``command``, with a fake bank provider when one is asked for) until a
    signal arrives or the command ends."""
    environ = os.environ if environ is None else environ
    running = await start_server(config)
    config = running.config
    wanted = wanted_provider(environ) if command else None
    bank: RunningProvider | None = start_fake_provider(wanted, config.bot_webhook_url) if wanted else None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    print(banner(config, command), flush=True)
    if bank is not None:
        print(f"  bank provider    a fake {bank.name.capitalize()} on {bank.base_url} (BANK_PROVIDER={bank.name}): "
              "the link in the chat opens its page,\n                   whose button links the bank and sends "
              "its signed webhook to the bot", flush=True)
    exit_code = 0
    try:
        if not command:
            await stop.wait()
        else:
            env = {**environ, **config.bot_environment(), **(bank.environment if bank else {})}
            try:
                process = await asyncio.create_subprocess_exec(*command, env=env, start_new_session=True)
            except (FileNotFoundError, PermissionError) as exc:
                print(f"sandbox: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
                return EXIT_COMMAND_NOT_FOUND
            waiter = asyncio.ensure_future(process.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if process.returncode is None:
                print("sandbox: stopping the bot command...", file=sys.stderr, flush=True)
                await _stop_process(process, received[0] if received else signal.SIGTERM, stop_timeout)
            await waiter
            code = process.returncode or 0
            exit_code = code if code >= 0 else 128 - code
            if not received:
                print(f"sandbox: the bot command ended (exit {exit_code}); stopping the sandbox", file=sys.stderr)
        if received:
            exit_code = 128 + received[0]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if bank is not None:
            await asyncio.to_thread(bank.stop)
        await running.stop()
    return exit_code


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    mode, option_args, command = _split_command(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    options = parser.parse_args(option_args)
    try:
        check_allowed(environ)
    except SandboxForbidden as refusal:
        print(f"sandbox: {refusal}", file=sys.stderr)
        return EXIT_FORBIDDEN
    if mode == "run" and not command:
        parser.print_usage(sys.stderr)
        print(
            "sandbox: `run` needs the bot command after `--`, e.g. python -m sandbox run -- make serve", file=sys.stderr
        )
        return EXIT_USAGE
    if mode == "serve" and command:
        print("sandbox: a command after `--` needs `run`: python -m sandbox run -- ...", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = build_config(options, environ)
    except ValueError as error:
        print(f"sandbox: {error}", file=sys.stderr)
        return EXIT_USAGE
    if options.print_env:
        sys.stdout.write(format_exports(config))
        return 0
    logging.basicConfig(
        level=logging.DEBUG if options.verbose else logging.INFO,
        format="%(asctime)s sandbox %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(config, command, stop_timeout=options.stop_timeout, environ=environ))
    except OSError as error:  # the port is taken, most likely
        print(f"sandbox: cannot listen on {config.host}:{config.port}: {error.strerror or error}", file=sys.stderr)
        return 1
