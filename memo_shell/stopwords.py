"""English stopwords for conversational memory: function words plus chat filler.

Kept as data in one place so the analyzer, the entity extractor and the query analysis agree.
Content words that merely look common ("home", "work", "family", "kids") are deliberately *not*
here: in a personal memory they are often exactly what a question is about.
"""

from __future__ import annotations

_FUNCTION = """
a about above after again against ago all almost along already also although always am among an
and another any anybody anyhow anyone anything anyway anyways anywhere are aren aren't around as
at away be became because become becomes been before being below beside besides between beyond
both but by can can't cannot could couldn couldn't d did didn didn't do does doesn doesn't doing
don don't done down during each either else elsewhere enough etc even ever every everybody
everyone everything everywhere few for from further had hadn hadn't has hasn hasn't have haven
haven't having he he'd he'll he's her here here's hers herself him himself his how how's however
i i'd i'll i'm i've ie if in into is isn isn't it it'd it'll it's its itself just ll m ma may
maybe me might mightn mine more most much must mustn my myself neither no nor not now o of off
often on once one's only onto or other others otherwise ought our ours ourselves out over own per
perhaps quite rather re s same shan shan't she she'd she'll she's should should've shouldn
shouldn't since so some somebody somehow someone something sometime sometimes somewhat somewhere
still such t than that that'll that's the their theirs them themselves then there there's
thereby therefore these they they'd they'll they're they've this those though through thus to
together too toward towards under until unto up upon us ve very via was wasn wasn't we we'd we'll
we're we've were weren weren't what what's whatever when when's whenever where where's whereas
wherever whether which while who who's whoever whom whose why why's will with within without won
won't would wouldn wouldn't y yet you you'd you'll you're you've your yours yourself yourselves
"""

#: Filler that carries no topic in chat: greetings, reactions, hedges, generic verbs.
_CHAT = """
hey hi hello hiya yo bye goodbye oh ooh ah aw aww wow whoa yeah yea yep yup yes nope nah ok okay
okey hmm hm um uh huh haha hahaha lol lmao omg btw tbh thanks thank thx cheers please pls sure
totally definitely absolutely really truly super pretty kinda sorta lot lots bit little glad happy
great good nice cool awesome amazing wonderful fantastic incredible lovely sweet fun neat
interesting exciting excited thrilled stoked proud honestly actually basically literally seriously
gonna wanna gotta got get gets getting go goes going went gone come comes coming came make makes
making made take takes taking took let lets like likes liked know knows knew known think thinks
thought feel feels felt see sees seen saw look looks looking looked say says said tell tells told
want wants wanted need needs needed keep keeps kept mean means meant sound sounds sounded seem
seems seemed hope hopes hoped guess thing things stuff way ways kind sort lot day today right well
also tho anyway anyways ones appreciate appreciated congrats congratulations woah whoa oof ha hah
gotcha lemme kudos oops fyi plus how'd how're how've must've could've would've hey ya y'all
"""

STOPWORDS: frozenset[str] = frozenset((_FUNCTION + _CHAT).split())
