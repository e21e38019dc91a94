"""Online feedback: the lists shown, the clicks on them, and the purchases they led to.

- :mod:`.lists` — ``similar_to()`` and ``recommended_for()`` as
  ``django_recs`` exports them: serving's lists, logged when given ``placement=``;
- :mod:`.impressions` — a list logged as one Impression row, its items
  marked for their click links; :mod:`.buffer` — the rows kept in memory and
  written in bulk; :mod:`.ids` — time-ordered impression ids;
- :mod:`.tokens` — signed click tokens; :mod:`.visitors` — who sees and
  clicks (and bots); :mod:`.clicks` — a click recorded;
  :mod:`.middleware` and :mod:`.views` — where clicks come in;
- :mod:`.attribution` — a purchase given to the click before it;
  :mod:`.rollup` — daily roll-ups, incrementally; :mod:`.retention` — old raw
  rows deleted; :mod:`.privacy` — forget_user() and the session merge;
- :mod:`.intervals` and :mod:`.report` — the admin's numbers.

Feedback sits above serving and capture and imports them; they never import
it (capture's signals tell it about erasures and logins).
"""

from __future__ import annotations

from .buffer import flush_impressions
from .clicks import CLICK_PARAMETER, record_click
from .lists import recommended_for, similar_to
from .privacy import connect
from .rollup import roll_up

__all__ = [
    "CLICK_PARAMETER",
    "connect",
    "flush_impressions",
    "recommended_for",
    "record_click",
    "roll_up",
    "similar_to",
]
