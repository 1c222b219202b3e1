"""Thread → session ids, mention stripping and thread context: pure functions, property-tested."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.app import MAX_CONTEXT_CHARS, _with_thread_context, session_id_for, strip_mentions

ids = st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True)
timestamps = st.from_regex(r"[0-9]{10}\.[0-9]{6}", fullmatch=True)


@given(team=ids, channel=ids, ts=timestamps, other_ts=timestamps)
def test_session_ids_are_stable_and_per_thread(team: str, channel: str, ts: str, other_ts: str) -> None:
    sid = session_id_for(team, channel, ts)
    assert sid == session_id_for(team, channel, ts)
    assert sid.startswith("slack-") and len(sid) <= 200
    assert (sid == session_id_for(team, channel, other_ts)) == (ts == other_ts)


@given(
    words=st.lists(st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=12), max_size=6),
    users=st.lists(ids, max_size=3),
)
def test_strip_mentions_removes_every_user_mention(words: list[str], users: list[str]) -> None:
    text = " ".join(f"<@U{u}> {w}" for u, w in zip(users, words, strict=False)) + " " + " ".join(words)
    stripped = strip_mentions(text)
    assert "<@U" not in stripped
    assert stripped == stripped.strip()


def test_strip_mentions_keeps_the_question() -> None:
    assert strip_mentions("<@U0BOT0001> why is <#C123|prod> slow?") == "why is <#C123|prod> slow?"
    assert strip_mentions("<@U0BOT0001|faultmaven>   ") == ""


@given(
    messages=st.lists(
        st.tuples(timestamps, st.booleans(), st.text(alphabet="abc xyz", max_size=300)), max_size=30
    ),
    question=st.text(alphabet="qrs tuv?", max_size=50),
    before=timestamps,
)
def test_thread_context_is_bounded_and_only_earlier_human_messages(
    messages: list[tuple[str, bool, str]], question: str, before: str
) -> None:
    thread = []
    for index, (ts, from_bot, words) in enumerate(messages):
        earlier_human = not from_bot and ts < before
        marker = f"EARLY{index}X" if earlier_human else f"LATE{index}X"
        message = {"ts": ts, "text": f"{marker} {words}"}
        if from_bot:
            message["bot_id"] = "B1"
        thread.append(message)
    out = _with_thread_context(question, thread, before_ts=before)
    assert out.startswith(question)
    assert len(out) <= len(question) + MAX_CONTEXT_CHARS + 40
    assert "LATE" not in out
    if any(m["text"].startswith("EARLY") for m in thread):
        assert "Earlier in the thread" in out
        last_early = [m for m in thread if m["text"].startswith("EARLY")][-1]
        assert last_early["text"].strip() in out  # the most recent context is kept when it is cut
