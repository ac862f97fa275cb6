"""Audits of a user's own data: checks that sit beside every result.

``audit_lookahead(symbol)`` recomputes every feature (field-engine states, template feature
vectors with their higher-timeframe context, template matches of a run's library, the
evolution factory's features and the user's own feature functions) on truncated and
future-perturbed copies of the data and reports any value at or before a cut that changes.
See docs/research.md, "Lookahead audit".
"""

from stratforge.audit.lookahead import Finding, LookaheadReport, audit_bars, audit_lookahead

__all__ = ["Finding", "LookaheadReport", "audit_bars", "audit_lookahead"]
