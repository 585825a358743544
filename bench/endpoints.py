"""The order rush's baseline: a minimal DRF endpoint, in the same service, that inserts one row.

Routed only by the bench settings (``bench/settings.py``, whose URL conf is ``bench/urls.py``;
production's ``livecommerce/urls.py`` never imports it) and left out of the OpenAPI schema:
``POST /api/v1/_bench/ping-insert`` takes a small JSON body and inserts one row, answering 201
with its id. It runs through everything a request in this service runs through (the middleware
stack, DRF's parsing, rendering and exception handling, the idempotency middleware's checks) but
no authentication, permission or throttling, and no business logic: the cost of "a Django
REST request that writes one row" on this machine.

The row goes into an existing small table instead of a model of its own: an
``IdempotencyRecord`` (a table of a dozen columns and two indexes, like most of the service's),
under a credential no API key can hash to (``bench``), already finished. The retention purge
removes such rows after 24 hours like any other; the benchmark runs on its own database anyway.
"""

import uuid

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from livecommerce.models import IdempotencyRecord

BENCH_CREDENTIAL = "bench"


class PingSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=100, required=False, default="")


class PingInsertView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def post(self, request):
        serializer = PingSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = IdempotencyRecord.objects.create(
            credential=BENCH_CREDENTIAL,
            key=uuid.uuid4().hex,
            request_hash="",
            method="POST",
            path=serializer.validated_data["note"],
            in_progress=False,
            status_code=201,
            locked_at=timezone.now(),
        )
        return Response({"id": record.pk}, status=status.HTTP_201_CREATED)
