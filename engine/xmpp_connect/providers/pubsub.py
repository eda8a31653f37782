"""XEP-0060 pieces the providers share: node creation with its access and publisher models, subscription,
and reading a node's models from its disco#info meta-data or owner configuration form."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from xmpp_connect.config.settings import NodeConfig

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_DATA = "jabber:x:data"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NODE_CONFIG_FORM = "http://jabber.org/protocol/pubsub#node_config"
ACCESS_MODEL_FIELDS = ("pubsub#access_model",)
PUBLISHER_MODEL_FIELDS = ("pubsub#publish_model", "pubsub#publisher_model")
ACCESS_MODELS = frozenset({"open", "presence", "roster", "authorize", "whitelist"})
PUBLISHER_MODELS = frozenset({"publishers", "subscribers", "open"})


@dataclass(frozen=True)
class NodeInfo:
    """§19 XmppPubSubNode as far as the service told us: whether it exists and its models (``unknown`` when
    the service did not say). ``error_condition``: snake_case condition of a refused request, else None."""

    service_jid: str
    node: str
    exists: bool
    access_model: str = "unknown"
    publisher_model: str = "unknown"
    created: bool = False
    error_condition: str | None = None


def _field(form: ET.Element, var: str, value: str) -> None:
    field = ET.SubElement(form, f"{{{NS_DATA}}}field", {"var": var})
    ET.SubElement(field, f"{{{NS_DATA}}}value").text = value


def create_element(settings: NodeConfig) -> ET.Element:
    """``<pubsub><create/><configure/></pubsub>`` for a new node with the configured models."""
    pubsub = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
    ET.SubElement(pubsub, f"{{{NS_PUBSUB}}}create", {"node": settings.node})
    configure = ET.SubElement(pubsub, f"{{{NS_PUBSUB}}}configure")
    form = ET.SubElement(configure, f"{{{NS_DATA}}}x", {"type": "submit"})
    _field(form, "FORM_TYPE", NODE_CONFIG_FORM)
    _field(form, "pubsub#access_model", settings.access_model)
    _field(form, "pubsub#publish_model", settings.publisher_model)
    return pubsub


def subscribe_element(node: str, jid: str) -> ET.Element:
    pubsub = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
    ET.SubElement(pubsub, f"{{{NS_PUBSUB}}}subscribe", {"node": node, "jid": jid})
    return pubsub


def items_request(node: str, item_ids: tuple[str, ...]) -> ET.Element:
    """``<pubsub><items/></pubsub>`` for the named items (all the node keeps when none is named)."""
    pubsub = ET.Element(f"{{{NS_PUBSUB}}}pubsub")
    items = ET.SubElement(pubsub, f"{{{NS_PUBSUB}}}items", {"node": node})
    for item_id in item_ids:
        ET.SubElement(items, f"{{{NS_PUBSUB}}}item", {"id": item_id})
    return pubsub


def configure_request(node: str) -> ET.Element:
    """The owner's request for a node's configuration form (its models)."""
    pubsub = ET.Element(f"{{{NS_PUBSUB_OWNER}}}pubsub")
    ET.SubElement(pubsub, f"{{{NS_PUBSUB_OWNER}}}configure", {"node": node})
    return pubsub


def form_values(parent: ET.Element) -> dict[str, str]:
    """The first value of every field of every data form below ``parent``."""
    values: dict[str, str] = {}
    for field in parent.iter(f"{{{NS_DATA}}}field"):
        value = field.find(f"{{{NS_DATA}}}value")
        if field.get("var") and value is not None and value.text is not None:
            values.setdefault(field.get("var", ""), value.text)
    return values


def node_models(parent: ET.Element) -> tuple[str, str]:
    """(access_model, publisher_model) from a node's meta-data or configuration form; ``unknown`` for what
    the form does not carry or carries outside XEP-0060's values."""
    values = form_values(parent)
    access = next((values[name] for name in ACCESS_MODEL_FIELDS if name in values), "unknown")
    publisher = next((values[name] for name in PUBLISHER_MODEL_FIELDS if name in values), "unknown")
    return (access if access in ACCESS_MODELS else "unknown",
            publisher if publisher in PUBLISHER_MODELS else "unknown")
