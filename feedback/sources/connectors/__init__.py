"""Connector types, by the name a source's `connector` gives."""

from __future__ import annotations

from feedback.sources.connectors.app_store import AppStoreConnector
from feedback.sources.connectors.base import Batch, Connector, PullContext
from feedback.sources.connectors.files import FileConnector
from feedback.sources.connectors.google_play import GooglePlayConnector
from feedback.sources.connectors.http_json import HttpJsonConnector
from feedback.sources.connectors.pulse import PulseConnector
from feedback.sources.connectors.push import PushConnector, WebhookConnector
from feedback.sources.connectors.qualtrics import QualtricsConnector
from feedback.sources.connectors.review_api import ReviewApiConnector
from feedback.sources.connectors.surveymonkey import SurveyMonkeyConnector
from feedback.sources.connectors.zendesk import ZendeskConnector

CONNECTORS: dict[str, type[Connector]] = {
    connector.kind: connector
    for connector in (
        FileConnector,
        QualtricsConnector,
        SurveyMonkeyConnector,
        PulseConnector,
        GooglePlayConnector,
        AppStoreConnector,
        ReviewApiConnector,
        ZendeskConnector,
        HttpJsonConnector,
        PushConnector,
        WebhookConnector,
    )
}

__all__ = ["CONNECTORS", "Batch", "Connector", "PullContext"]
