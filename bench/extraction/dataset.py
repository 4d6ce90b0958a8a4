"""The synthetic application the extraction benchmark reads: users and groups as SCIM JSON.

Every resource is serialized once, up front, so the server only joins bytes: what is
measured is the client, not the server. Deterministic for a given size.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CREATED = "2024-01-15T09:30:00Z"
GIVEN = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus", "Radia", "Tim"]
FAMILY = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth"]
DEPARTMENTS = ["Engineering", "Sales", "Support", "Finance", "Legal", "Research", "Marketing", "Operations"]


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Dataset:
    """``users`` users and ``users // 10`` groups: one holding half the users, the rest about 20 each."""

    users: int
    base_url: str
    user_ids: list[str] = field(default_factory=list)
    user_json: list[bytes] = field(default_factory=list)
    group_json: list[bytes] = field(default_factory=list)
    memberships: int = 0
    changed: int = 0

    @property
    def groups(self) -> int:
        return max(1, self.users // 10)

    def build(self) -> Dataset:
        rng = random.Random(self.users)
        for index in range(self.users):
            self.user_ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            self.user_json.append(dumps(self._user(index, rng)))
        names = [f"user{index:07d}" for index in range(self.users)]
        big = sorted(rng.sample(range(self.users), self.users // 2))
        for index in range(self.groups):
            members = big if index == 0 else rng.sample(range(self.users), min(self.users, rng.randint(15, 25)))
            self.memberships += len(members)
            group_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            resource = {
                "schemas": [GROUP_SCHEMA],
                "id": group_id,
                "externalId": f"G{index:06d}",
                "displayName": "Everyone (half)" if index == 0 else f"Team {index:05d}",
                "members": [
                    {
                        "value": self.user_ids[m],
                        "display": names[m],
                        "type": "User",
                        "$ref": f"{self.base_url}/Users/{self.user_ids[m]}",
                    }
                    for m in members
                ],
                "meta": self._meta("Group", group_id, 1),
            }
            self.group_json.append(dumps(resource))
        return self

    def _meta(self, kind: str, resource_id: str, version: int) -> dict[str, str]:
        return {
            "resourceType": kind,
            "created": CREATED,
            "lastModified": CREATED if version == 1 else "2024-06-01T12:00:00Z",
            "version": f'W/"{version}"',
            "location": f"{self.base_url}/{kind}s/{resource_id}",
        }

    def _user(self, index: int, rng: random.Random) -> dict[str, Any]:
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        user_id = self.user_ids[index]
        return {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "id": user_id,
            "externalId": f"E{index:07d}",
            "userName": f"user{index:07d}",
            "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
            "displayName": f"{given} {family} {index}",
            "emails": [{"value": f"user{index:07d}@example.com", "type": "work", "primary": True}],
            "active": rng.random() > 0.05,
            ENTERPRISE: {
                "employeeNumber": str(100000 + index),
                "department": rng.choice(DEPARTMENTS),
                "costCenter": f"CC{rng.randint(100, 999)}",
            },
            "meta": self._meta("User", user_id, 1),
        }

    def change_users(self, every: int) -> int:
        """Give every ``every``-th user a new display name (and version); returns how many changed.

        Each call changes the same users again, so a run can measure several reads of a 1% change.
        """
        changed = 0
        for index in range(0, self.users, every):
            resource = json.loads(self.user_json[index])
            resource["displayName"] = f"{resource['displayName']} (renamed)"
            version = int(resource["meta"]["version"].removeprefix('W/"').rstrip('"'))
            resource["meta"] = self._meta("User", resource["id"], version + 1)
            self.user_json[index] = dumps(resource)
            changed += 1
        self.changed += changed
        return changed


def list_response(items: list[bytes], start_index: int, count: int) -> bytes:
    """An RFC 7644 ListResponse of ``items`` from ``start_index`` (1-based), at most ``count``."""
    start = max(1, start_index)
    page = items[start - 1 : start - 1 + max(0, count)]
    head = dumps(
        {"schemas": [LIST_RESPONSE], "totalResults": len(items), "startIndex": start, "itemsPerPage": len(page)}
    )
    return head[:-1] + b',"Resources":[' + b",".join(page) + b"]}"


SCHEMAS = {
    "schemas": [LIST_RESPONSE],
    "totalResults": 3,
    "startIndex": 1,
    "itemsPerPage": 3,
    "Resources": [
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": USER_SCHEMA, "name": "User"},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": GROUP_SCHEMA, "name": "Group"},
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": ENTERPRISE,
            "name": "EnterpriseUser",
            "attributes": [
                {
                    "name": name,
                    "type": "string",
                    "multiValued": False,
                    "required": False,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                }
                for name in ("employeeNumber", "costCenter", "organization", "division", "department")
            ],
        },
    ],
}
