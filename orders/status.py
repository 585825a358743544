"""The one status table: which action may move an order (or a live session) from where, by whom.

Every state change goes through :func:`order_move` / :func:`live_session_move`, called by the
service with the row locked; the views build their permissions from the same table, so who may
act and what the action may do are written down exactly once (django-oscar's ``pipeline``).

========  ==============================================  ====================  ==============
action    from                                            to                    by
========  ==============================================  ====================  ==============
pay       pending_payment                                 paid                  host app
cancel    pending_payment, paid                           canceled              host app,
                                                                                fulfillment
accept    paid                                            accepted              fulfillment
ship      accepted                                        shipped               fulfillment
deliver   shipped                                         delivered             fulfillment
complete  delivered, once the return window has closed    completed             the service
expire    pending_payment, once expires_at has passed     expired               the service
refund    paid, accepted, shipped, delivered, completed   unchanged, or         host app,
                                                          refunded when all     fulfillment,
                                                          is refunded           ops, finance
========  ==============================================  ====================  ==============
"""

from dataclasses import dataclass

from livecommerce.errors import AppError
from orders.choices import LiveSessionStatus, OrderStatus
from partners.choices import PartnerKind, StaffRole


@dataclass(frozen=True)
class Move:
    """One row of the table: the statuses an action starts from, where it leads, who may do it.

    A refund's ``target`` (``refunded``) is reached only when everything is refunded; a partial
    refund keeps the order's status.
    An action with no ``partners`` and no ``staff`` is done by the service itself.
    """

    sources: frozenset[str]
    target: str
    partners: tuple[str, ...] = ()
    staff: tuple[str, ...] = ()


ORDER_MOVES: dict[str, Move] = {
    "pay": Move(
        frozenset({OrderStatus.PENDING_PAYMENT}),
        OrderStatus.PAID,
        partners=(PartnerKind.HOST_APP,),
    ),
    "cancel": Move(
        frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID}),
        OrderStatus.CANCELED,
        partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT),
    ),
    "accept": Move(
        frozenset({OrderStatus.PAID}), OrderStatus.ACCEPTED, partners=(PartnerKind.FULFILLMENT,)
    ),
    "ship": Move(
        frozenset({OrderStatus.ACCEPTED}), OrderStatus.SHIPPED, partners=(PartnerKind.FULFILLMENT,)
    ),
    "deliver": Move(
        frozenset({OrderStatus.SHIPPED}), OrderStatus.DELIVERED, partners=(PartnerKind.FULFILLMENT,)
    ),
    "complete": Move(frozenset({OrderStatus.DELIVERED}), OrderStatus.COMPLETED),
    "expire": Move(frozenset({OrderStatus.PENDING_PAYMENT}), OrderStatus.EXPIRED),
    "refund": Move(
        frozenset(
            {
                OrderStatus.PAID,
                OrderStatus.ACCEPTED,
                OrderStatus.SHIPPED,
                OrderStatus.DELIVERED,
                OrderStatus.COMPLETED,
            }
        ),
        OrderStatus.REFUNDED,
        partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT),
        staff=(StaffRole.OPS, StaffRole.FINANCE),
    ),
}

LIVE_SESSION_MOVES: dict[str, Move] = {
    "start": Move(
        frozenset({LiveSessionStatus.SCHEDULED}),
        LiveSessionStatus.LIVE,
        partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT),
    ),
    "end": Move(
        frozenset({LiveSessionStatus.LIVE}),
        LiveSessionStatus.ENDED,
        partners=(PartnerKind.HOST_APP, PartnerKind.FULFILLMENT),
    ),
}


def _check(table: dict[str, Move], noun: str, action: str, status: str) -> Move:
    move = table[action]
    if status not in move.sources:
        raise AppError(
            "invalid_transition",
            f"Cannot {action} {'an' if noun[0] in 'aeiou' else 'a'} {noun} that is {status}; "
            f"{action} applies to {noun}s that are: {', '.join(sorted(move.sources))}.",
        )
    return move


def order_move(action: str, status: str) -> Move:
    """The move ``action`` makes from ``status``, or ``AppError("invalid_transition")`` (409)."""
    return _check(ORDER_MOVES, "order", action, status)


def live_session_move(action: str, status: str) -> Move:
    """The move ``action`` makes on a live session in ``status``, or 409 ``invalid_transition``."""
    return _check(LIVE_SESSION_MOVES, "live session", action, status)
