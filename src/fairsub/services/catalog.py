"""Keeping the database's copy of the operator's catalog in step with the TOML file."""

from __future__ import annotations

from fairsub.domain.catalog import Catalog
from fairsub.services import audit
from fairsub.services.ports import Clock, UnitOfWork


def store(uow: UnitOfWork, clock: Clock, catalog: Catalog, *, actor: str = "system") -> None:
    """Insert or update every region, product, plan and price. Nothing sold is deleted:
    a plan removed from the file keeps serving the subscriptions that have it."""
    with uow.write():
        uow.catalog.store(catalog)
        audit.record(
            uow,
            actor=actor,
            channel="cli",
            action="cli:catalog:stored",
            subject="catalog",
            account_id=None,
            at=clock.now(),
            after={"plans": sorted(catalog.plans), "regions": sorted(catalog.regions)},
        )
        uow.commit()
