"""Memory and model text is never parsed as markup in the app: a tag, a session name or an
error quoting "[/INST]" (a closing tag with no opening one) raised MarkupError, and
"[link=…]" would have become a live hyperlink.
"""

from __future__ import annotations

from tui_helpers import make_app, screen_text, settle

MARKUP = "[/INST] [link=http://evil.example]x[/link] [b]bold"


async def test_markup_in_memories_toasts_and_the_graph_is_shown_as_text(settings, memories):
    memories.add("Ada plans the Lisbon trip", tags=[MARKUP])
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        app.notify(f"could not do it: {MARKUP}", title="Test")  # e.g. an error quoting text
        await settle(pilot)
        [toast] = [n for n in app._notifications if n.title == "Test"]
        assert toast.markup is False  # shown as typed, "[/INST]" and all
        await pilot.press("f4")  # the entity graph lists the tag as an entity
        await settle(pilot)
        assert type(app.screen).__name__ == "GraphScreen"
        assert "[/INST]" in screen_text(app)
