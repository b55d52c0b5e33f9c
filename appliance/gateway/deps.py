"""Dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from appliance.config import MynahConfig
from appliance.gateway.link import CoordinatorLink


def _link(request: Request) -> CoordinatorLink:
    link: CoordinatorLink = request.app.state.link
    return link


def _config(request: Request) -> MynahConfig:
    config: MynahConfig = request.app.state.config
    return config


Link = Annotated[CoordinatorLink, Depends(_link)]
Config = Annotated[MynahConfig, Depends(_config)]
