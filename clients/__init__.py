"""The partner apps' side of the live-commerce API: an HTTP client, a webhook receiver, simulators.

Nothing here imports the server: a partner app only has the network between it and the service.
"""

from clients.api import (
    ApiError,
    AuthenticationError,
    Conflict,
    LiveCommerceClient,
    LiveCommerceError,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    Unprocessable,
    ValidationError,
)

__all__ = [
    "ApiError",
    "AuthenticationError",
    "Conflict",
    "LiveCommerceClient",
    "LiveCommerceError",
    "NetworkError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "Unprocessable",
    "ValidationError",
]
