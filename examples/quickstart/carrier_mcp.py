"""The shop's parcel carrier, as an MCP server (built with the official SDK): its tools become
tools next to the ones in tools.py, listed under the module `mcp:carrier`.

Configured in pyproject.toml as `[tool.codeact.mcp.carrier]`; codeact starts it on first use,
shares it between runs and stops it with the language server.
"""

from __future__ import annotations

from typing import Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

# Not a tool module (a `tools = ["**/*.py"]` glob would match it): its tools reach the agent
# through MCP, from the running server.
__all__: list[str] = []

server = MCPServer("carrier")

_DAYS = {"DE": 1, "NL": 2, "FR": 3, "US": 6}


class Delivery(BaseModel):
    country: str
    days: int = Field(description="working days from dispatch to the door")
    service: Literal["road", "air"]


@server.tool()
def delivery_estimate(country: str) -> Delivery:
    """How long a parcel takes to reach `country` (ISO code like "DE"), and by which service."""
    code = country.upper()
    if code not in _DAYS:
        raise ToolError(f"the carrier does not deliver to {country!r}")
    return Delivery(country=code, days=_DAYS[code], service="air" if code == "US" else "road")


if __name__ == "__main__":
    server.run()
