"""The page at GET / (asr/serve/static/index.html) in a real headless Chromium, against `python -m asr.serve`.

Upload: a clip chosen in the file input shows the CLI's transcript and word times, a word seeks the player, the
.srt and .vtt buttons save the CLI's subtitles; a file dropped on the page that is not audio shows the server's
error message; a server with --api-key is told so, and works once the key is entered. Record: Chromium's fake
microphone plays a clip (with a second of silence either side, looped); the page records it (through
AudioWorklet, and through its ScriptProcessor fallback) and encodes 16 kHz WAV, and the transcript holds the
clip's words. Needs chromium and chromedriver (skipped without them); nothing is downloaded (Selenium Manager
is kept offline). Screenshots: the test's tmp folder; the page after an upload also at /tmp/asr_page.png.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.metrics import word_errors

pytest.importorskip("fastapi", reason="the server needs the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[dev]'")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from relay import Relay
from test_serve import running_server  # one way to start the server (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "tests" / "data" / "an4"
UPLOAD_CLIP = CLIPS / "an406-fcaw-b.flac"  # said "rubout g m e f three nine", heard "... g n e f ..." (4.0 s)
RECORD_CLIP = CLIPS / "cen7-mjgm-b.flac"  # "six eight three three oh seven five" (2.5 s)
PAD_S = 1.0  # silence before and after the clip in the fake microphone's file
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_COPY = Path("/tmp/asr_page.png")  # the page after an upload, where a person can look at it

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason=f"needs chromium and chromedriver on PATH (chromium: {CHROMIUM}, chromedriver: {CHROMEDRIVER}); "
           "apt-get install -y chromium chromium-driver")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("web_page")


@pytest.fixture(scope="module")
def cli(tmp) -> Path:
    """`python -m asr.transcribe --format all` of both clips: NAME.txt, .json, .srt, .vtt in the returned folder."""
    out = tmp / "cli"
    subprocess.run([sys.executable, "-m", "asr.transcribe", "--threads", "1", "--quiet", "--format", "all",
                    "--output-dir", str(out), str(UPLOAD_CLIP), str(RECORD_CLIP)], cwd=ROOT, check=True)
    return out


def cli_json(cli: Path, clip: Path) -> dict:
    return json.loads((cli / f"{clip.stem}.json").read_text())


@pytest.fixture(scope="module")
def server(tmp) -> Iterator[str]:
    with running_server(tmp / "server.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def microphone_file(tmp) -> Path:
    """RECORD_CLIP as 16-bit PCM WAV (what Chromium's fake microphone reads) with PAD_S of silence either side."""
    audio, rate = sf.read(RECORD_CLIP, dtype="int16")
    pad = np.zeros(int(PAD_S * rate), dtype=np.int16)
    path = tmp / "microphone.wav"
    sf.write(path, np.concatenate([pad, audio, pad]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(tmp, microphone_file):
    """Headless Chromium whose microphone plays `microphone_file` in a loop; downloads go to tmp/downloads."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1300",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone_file}", "--autoplay-policy=no-user-gesture-required",
                 "--mute-audio"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp / "downloads"),
                                              "download.prompt_for_download": False})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a browser or a driver
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser, server: str) -> None:
    browser.get(f"{server}/")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "model-name").text not in ("", "…"))
    assert browser.find_element(By.ID, "model-name").text == "asr-an4"


def wait_for(browser, *states: str, timeout: float = 120) -> str:
    """Wait until body[data-state] is one of `states`; returns it."""
    WebDriverWait(browser, timeout).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state") in states)
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def shown_words(browser) -> list[tuple[str, float, float]]:
    """The words table: (word, start, end) per row."""
    rows = browser.find_elements(By.CSS_SELECTOR, "#words tbody tr")
    cells = [[c.text for c in r.find_elements(By.CSS_SELECTOR, "td")] for r in rows]
    return [(word, float(start), float(end)) for word, start, end, _confidence in cells]


def screenshot(browser, tmp: Path, name: str, copy: bool = False) -> Path:
    """The page as tmp/NAME.png (and at SCREENSHOT_COPY too with `copy`)."""
    path = tmp / f"{name}.png"
    assert browser.save_screenshot(str(path)), "no screenshot"
    if copy:
        shutil.copy(path, SCREENSHOT_COPY)
    return path


def test_upload_shows_the_transcript_word_times_and_subtitles(browser, server, cli, tmp):
    expected = cli_json(cli, UPLOAD_CLIP)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(UPLOAD_CLIP))
    assert wait_for(browser, "done", "error") == "done", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "transcript").text == expected["text"] == "rubout g n e f three nine"
    cli_words = [(w["word"], w["start"], w["end"]) for s in expected["segments"] for w in s["words"]]
    shown = shown_words(browser)
    assert [w for w, _, _ in shown] == [w for w, _, _ in cli_words]
    times = [t for _, start, end in shown for t in (start, end)]
    assert times == pytest.approx([t for _, start, end in cli_words for t in (start, end)], abs=0.006)  # two decimals
    assert not browser.find_element(By.ID, "error").is_displayed()
    screenshot(browser, tmp, "upload", copy=True)

    word, start, _ = cli_words[2]  # a word's button seeks the player to the word's start
    browser.find_element(By.CSS_SELECTOR, "#words tbody tr:nth-child(3) button").click()
    position = browser.execute_script("return document.getElementById('player').currentTime")
    assert start - 0.01 <= position < start + 1.0, (word, start, position)

    for fmt, first in (("srt", r"1\n\d\d:\d\d:\d\d,\d{3} --> "), ("vtt", r"WEBVTT\n\n\d\d:\d\d:\d\d\.\d{3} --> ")):
        browser.execute_script("window.asrPage.lastDownload = null")
        browser.find_element(By.ID, f"download-{fmt}").click()
        WebDriverWait(browser, 60).until(lambda b: b.execute_script("return window.asrPage.lastDownload"))
        saved = browser.execute_script("return window.asrPage.lastDownload")
        subtitles = (cli / f"{UPLOAD_CLIP.stem}.{fmt}").read_text()  # the CLI's
        assert re.match(first, subtitles), subtitles
        assert saved == {"name": f"{UPLOAD_CLIP.stem}.{fmt}", "text": subtitles}
        on_disk = tmp / "downloads" / f"{UPLOAD_CLIP.stem}.{fmt}"  # the browser saved it too
        WebDriverWait(browser, 30).until(
            lambda _, path=on_disk, text=subtitles: path.is_file() and path.read_text() == text)


def test_hotwords_in_the_box_go_with_the_upload(browser, server, tmp):
    open_page(browser, server)
    browser.find_element(By.ID, "hotwords").send_keys("m:3, rubout")
    browser.find_element(By.ID, "file").send_keys(str(UPLOAD_CLIP))
    assert wait_for(browser, "done", "error") == "done", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "transcript").text == "rubout g m e f three nine"  # heard as "... n ..." without
    screenshot(browser, tmp, "hotwords")


def drop_file(browser, path: Path) -> None:
    """Drop `path` on the drop zone, as a drag from the desktop would (a DataTransfer holding the file)."""
    browser.execute_script("const i = document.createElement('input'); i.type = 'file'; i.id = 'drag-source';"
                           "i.style.display = 'none'; document.body.append(i);")
    browser.find_element(By.ID, "drag-source").send_keys(str(path))
    browser.execute_script("const source = document.getElementById('drag-source'); const dt = new DataTransfer();"
                           "dt.items.add(source.files[0]); source.remove();"
                           "document.getElementById('drop').dispatchEvent("
                           "  new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));")


def test_a_dropped_file_that_is_not_audio_shows_the_servers_error(browser, server, tmp):
    notes = tmp / "notes.wav"
    notes.write_text("these are notes, not audio\n" * 20)
    open_page(browser, server)
    drop_file(browser, notes)
    assert wait_for(browser, "done", "error") == "error"
    message = httpx.post(f"{server}/v1/audio/transcriptions", data={"model": "whisper-1"},
                         files={"file": ("notes.wav", notes.read_bytes())}).json()["error"]["message"]
    assert "notes.wav" in message
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and error.text == f"Error: {message}"
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert browser.find_element(By.ID, "status").text == "notes.wav was not transcribed."
    screenshot(browser, tmp, "error")


@pytest.mark.parametrize("capture", ["AudioWorklet", "ScriptProcessor"])
def test_recording_from_the_microphone(browser, server, cli, tmp, capture):
    """The fake microphone loops [1 s silence, clip, 1 s silence] from when the page asks for it; the page
    records a little more than one loop, so the clip is heard whole (the page starts listening well within the
    first second of silence) and the loop's restart adds silence, or at worst the start of its first word.
    Checked: the transcript is the CLI's for the clip within one word's edit (resampled twice on the way).
    ScriptProcessor: the page's fallback for browsers without AudioWorklet (hidden from the page here)."""
    expected = cli_json(cli, RECORD_CLIP)["text"]
    loop_s = sf.info(RECORD_CLIP).duration + 2 * PAD_S
    open_page(browser, server)
    if capture == "ScriptProcessor":
        browser.execute_script(
            "Object.defineProperty(BaseAudioContext.prototype, 'audioWorklet', {get: () => undefined})")
    browser.find_element(By.ID, "record").click()
    assert wait_for(browser, "recording", "error", timeout=30) == "recording", \
        browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "record").text == "Stop"
    browser.execute_script(  # Stop is pressed in the page, at once: a WebDriver round trip can take seconds here
        "const t = setInterval(() => { if (window.asrPage.recordedSeconds >= arguments[0]) {"
        "  clearInterval(t); document.getElementById('record').click(); } }, 10);", loop_s + 0.2)
    screenshot(browser, tmp, f"recording-{capture}-live")  # most often still recording
    assert wait_for(browser, "done", "error") == "done", browser.find_element(By.ID, "error").text
    heard = browser.find_element(By.ID, "transcript").text
    screenshot(browser, tmp, f"recording-{capture}")
    errors = word_errors(expected, heard)
    assert errors.errors <= 1, f"expected {expected!r}, heard {heard!r}"
    assert [w for w, _, _ in shown_words(browser)] == heard.split()
    status = browser.find_element(By.ID, "status").text
    assert re.match(r"recording-[\d-]+\.wav: \d+\.\d s of audio", status), status
    header = bytes(browser.execute_async_script(  # what the page sent: its first 44 bytes
        "const done = arguments[0];"
        "window.asrPage.audio.slice(0, 44).arrayBuffer().then((b) => done(Array.from(new Uint8Array(b))));"))
    riff, size, wave, fmt, _, pcm, channels, rate, _, _, bits, data, n = struct.unpack("<4sI4s4sIHHIIHH4sI", header)
    assert (riff, wave, fmt, pcm, channels, rate, bits, data) == (b"RIFF", b"WAVE", b"fmt ", 1, 1, 16000, 16, b"data")
    assert size == 36 + n and loop_s <= n / 2 / rate < loop_s + 2, n


def test_a_server_with_an_api_key(browser, cli, tmp):
    """Without the key the page says so (the server's 401 message) and opens Settings; with it, it transcribes,
    and Live streams with it (sent as a subprotocol: the server's access log never prints it)."""
    with running_server(tmp / "server_key.log", "--api-key", "sesame") as (url, _):
        browser.get(f"{url}/")
        error = browser.find_element(By.ID, "error")
        WebDriverWait(browser, 30).until(lambda _: error.is_displayed())
        assert "API key" in error.text and "Settings" in error.text, error.text
        assert browser.find_element(By.ID, "model-name").text == "unknown"
        screenshot(browser, tmp, "api-key-missing")
        key = browser.find_element(By.ID, "key")
        assert key.is_displayed()  # Settings was opened
        key.send_keys("sesame")
        browser.find_element(By.ID, "status").click()  # leaving the field commits it
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "model-name").text == "asr-an4")
        assert not error.is_displayed()
        browser.find_element(By.ID, "file").send_keys(str(RECORD_CLIP))
        assert wait_for(browser, "done", "error") == "done", error.text
        assert browser.find_element(By.ID, "transcript").text == cli_json(cli, RECORD_CLIP)["text"]
        browser.find_element(By.ID, "live").click()
        assert wait_for(browser, "live", "error", timeout=30) == "live", error.text
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "live-partial").text or error.is_displayed())
        assert not error.is_displayed(), error.text
        browser.find_element(By.ID, "live").click()
        assert wait_for(browser, "idle", "error", timeout=30) == "idle", error.text
    log = (tmp / "server_key.log").read_text()
    assert '"WebSocket /v1/stream" [accepted]' in log and "sesame" not in log, log


def test_live_mode_shows_words_as_they_are_spoken(browser, server, tmp):
    """Live: the fake microphone's loop [1 s silence, clip, 1 s silence] streams to /v1/stream. Partials show
    while the clip plays; after the pause that follows it, its words are final. Checked against the streaming
    model's own transcript of the clip (`python -m asr.transcribe --stream`) within one word's edit (the page
    resamples the microphone on the way)."""
    expected = subprocess.run([sys.executable, "-m", "asr.transcribe", "--stream", "--threads", "1", "--quiet",
                               str(RECORD_CLIP)], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    open_page(browser, server)
    browser.execute_script(  # every partial the page shows, kept for the test
        "window.asrPage.partials = []; const p = document.getElementById('live-partial');"
        "new MutationObserver(() => { if (p.textContent) window.asrPage.partials.push(p.textContent); })"
        "  .observe(p, {childList: true, characterData: true, subtree: true});")
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "live", "error", timeout=30) == "live", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "live").text == "Stop live"
    WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#live-final span.final"))
    heard = browser.find_element(By.CSS_SELECTOR, "#live-final span.final").text.strip()
    hover = browser.find_element(By.CSS_SELECTOR, "#live-final span.final").get_attribute("title")
    times, alternatives = hover.split("\nalternatives: ")  # the word times, then the best texts (hover shows them)
    listed = [re.fullmatch(r"(.+) \((\d\.\d\d)\)", a).groups() for a in alternatives.split("; ")]
    assert listed[0][0] == heard and [float(c) for _, c in listed] == sorted((float(c) for _, c in listed), reverse=True)
    assert len(listed) == len({t for t, _ in listed}) <= 3 and len(times.split(", ")) == len(heard.split())
    screenshot(browser, tmp, "live")
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "idle", "error", timeout=30) == "idle", browser.find_element(By.ID, "error").text
    partials = browser.execute_script("return window.asrPage.partials")
    assert partials, "no partial hypothesis was shown before the words were final"
    assert word_errors(expected, heard).errors <= 1, f"expected {expected!r}, heard {heard!r}"


def watch_microphone(browser) -> None:
    """Count the page's calls for the microphone (as they are made) and keep the tracks it is given."""
    browser.execute_script(
        "const page = window.asrPage; page.micCalls = 0; page.micTracks = [];"
        "const get = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);"
        "navigator.mediaDevices.getUserMedia = async (c) => {"
        "  page.micCalls += 1; const s = await get(c); page.micTracks.push(...s.getTracks()); return s; };")


def microphone(browser) -> tuple[int, list[str]]:
    """(calls for the microphone, each track's readyState: 'live' or 'ended') since watch_microphone."""
    return tuple(browser.execute_script(
        "return [window.asrPage.micCalls, window.asrPage.micTracks.map((t) => t.readyState)]"))


def error_text(browser) -> str:
    return browser.find_element(By.ID, "error").text


def test_a_live_stream_refused_by_the_server_ends_live_mode(browser, server):
    """Hotwords the server refuses: it answers the stream's config with an error and closes it (1007), while
    the page is still setting the microphone up. The page shows the error, leaves live mode and lets go of the
    microphone (it stayed 'live', the microphone open, with nothing listening)."""
    open_page(browser, server)
    watch_microphone(browser)
    browser.find_element(By.ID, "hotwords").send_keys("rubout:99")
    browser.find_element(By.ID, "live").click()
    WebDriverWait(browser, 30).until(lambda b: error_text(b))
    assert "rubout" in error_text(browser) and "(0, 10]" in error_text(browser), error_text(browser)
    assert wait_for(browser, "error", "idle", timeout=10) == "error"
    assert browser.find_element(By.ID, "live").text == "Live"
    assert browser.find_element(By.ID, "record").is_enabled() and browser.find_element(By.ID, "file").is_enabled()
    WebDriverWait(browser, 5).until(lambda b: microphone(b)[1] == ["ended"])


def test_a_live_stream_whose_server_is_lost_says_so(browser, server):
    """The connection drops mid-stream (no close frame: 1006): the page says the stream was lost, as an error,
    and lets go of the microphone (it said 'Live stream stopped.', as if Stop had been pressed)."""
    relay = Relay(int(server.rsplit(":", 1)[1]))
    try:
        open_page(browser, relay.url)
        watch_microphone(browser)
        browser.find_element(By.ID, "live").click()
        assert wait_for(browser, "live", "error", timeout=30) == "live", error_text(browser)
        relay.cut()
        assert wait_for(browser, "error", "idle", timeout=10) == "error"
    finally:
        relay.cut()
    assert "lost" in error_text(browser), error_text(browser)
    assert browser.find_element(By.ID, "live").text == "Live" and browser.find_element(By.ID, "live").is_enabled()
    assert microphone(browser) == (1, ["ended"])


def test_stop_pressed_twice_transcribes_once_and_lets_go_of_the_microphone(browser, server):
    """A double click on Stop: the second click began a new recording (the microphone open again, the button
    'Stop' under a finished transcript). Now it does nothing: one recording, transcribed, the microphone closed."""
    open_page(browser, server)
    watch_microphone(browser)
    browser.find_element(By.ID, "record").click()
    assert wait_for(browser, "recording", "error", timeout=30) == "recording", error_text(browser)
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return window.asrPage.recordedSeconds") > 0.5)
    browser.execute_script("const b = document.getElementById('record'); b.click(); b.click();")
    assert wait_for(browser, "done", "error") == "done", error_text(browser)
    assert microphone(browser) == (1, ["ended"])
    assert browser.find_element(By.ID, "record").text == "Record"


def test_one_thing_at_a_time_record_live_or_upload(browser, server):
    """While recording, Live cannot be pressed (it could: two captures of the microphone, and stopping Live
    re-enabled the file input under the recording); while live, saving subtitles of the last upload leaves Record
    and the file input disabled (its end re-enabled them: an upload could start under the live stream)."""
    enabled = lambda name: browser.find_element(By.ID, name).is_enabled()  # noqa: E731
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(RECORD_CLIP))
    assert wait_for(browser, "done", "error") == "done", error_text(browser)
    browser.find_element(By.ID, "record").click()
    assert wait_for(browser, "recording", "error", timeout=30) == "recording", error_text(browser)
    assert not enabled("live") and not enabled("file")
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return window.asrPage.recordedSeconds") > 0.5)
    browser.find_element(By.ID, "record").click()
    assert wait_for(browser, "done", "error") == "done", error_text(browser)
    assert enabled("live") and enabled("record") and enabled("file")
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "live", "error", timeout=30) == "live", error_text(browser)
    browser.execute_script("window.asrPage.lastDownload = null")
    browser.find_element(By.ID, "download-srt").click()
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return window.asrPage.lastDownload"))
    assert not enabled("record") and not enabled("file") and enabled("live")
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "idle", "error", timeout=30) == "idle", error_text(browser)
    assert enabled("live") and enabled("record") and enabled("file")


def test_a_new_live_stream_does_not_show_the_last_ones_words(browser, server):
    """Stop live and Live again at once: the first stream's last result (the server's answer to its eof) came
    after the new stream had cleared the text, and its words were shown as the new stream's."""
    open_page(browser, server)
    browser.execute_script(  # every WebSocket the page opens, kept for the test
        "const Socket = window.WebSocket; window.asrPage.sockets = [];"
        "window.WebSocket = function (...args) { const ws = new Socket(...args); window.asrPage.sockets.push(ws);"
        "  return ws; };"
        "Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3, prototype: Socket.prototype});")
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "live", "error", timeout=30) == "live", error_text(browser)
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "live-partial").text.strip())
    browser.execute_script("const b = document.getElementById('live'); b.click(); b.click();")  # stop, start
    assert wait_for(browser, "live", "error", timeout=30) == "live", error_text(browser)
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "const s = window.asrPage.sockets; return s.length === 2 && s[0].readyState === WebSocket.CLOSED"))
    # the new stream's microphone starts with a second of silence: nothing of its own can be final yet
    assert browser.find_element(By.ID, "live-final").text == ""
    browser.find_element(By.ID, "live").click()
    assert wait_for(browser, "idle", "error", timeout=30) == "idle", error_text(browser)


def test_subtitles_are_of_the_transcript_shown(browser, server, cli):
    """Hotwords typed after a transcript is shown are for the next upload: the .srt saved then is the shown
    transcript's (it was asked for with the new hotwords, and said 'g m e f' under a transcript saying 'g n e f')."""
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(UPLOAD_CLIP))
    assert wait_for(browser, "done", "error") == "done", error_text(browser)
    assert browser.find_element(By.ID, "transcript").text == "rubout g n e f three nine"
    browser.find_element(By.ID, "hotwords").send_keys("m:3, rubout")
    browser.execute_script("window.asrPage.lastDownload = null")
    browser.find_element(By.ID, "download-srt").click()
    WebDriverWait(browser, 60).until(lambda b: b.execute_script("return window.asrPage.lastDownload"))
    saved = browser.execute_script("return window.asrPage.lastDownload.text")
    assert saved == (cli / f"{UPLOAD_CLIP.stem}.srt").read_text()


def test_every_control_has_a_name_a_screen_reader_can_say(browser, server):
    """A review found the audio player without a label (a screen reader says only "audio"): every control the
    page has, shown or not yet, is named by a label, aria-label, aria-labelledby or its own text."""
    open_page(browser, server)
    unnamed = browser.execute_script("""
        const named = (el) => (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
            || (el.getAttribute("aria-labelledby") || "").split(" ").some((id) => document.getElementById(id))
            || (el.tagName === "BUTTON" && el.textContent.trim());
        return [...document.querySelectorAll("button, input, select, textarea, audio, video")]
            .filter((el) => el.type !== "hidden" && !named(el)).map((el) => el.outerHTML.slice(0, 80));
    """)
    assert unnamed == []
