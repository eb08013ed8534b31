"""Playing a recording (a caller's message, a recorded call) in the console.

``GET /recordings/<token>``: the token is the recording's random name, never its path. The
region check is in the query (``dispatch.recordings.playable``): another region's recording,
a deleted one and an unknown token all get the same 404, and the attempt is audited; each
playback is audited too. The file is read from ``[recordings] dir`` and never from outside it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from dispatch.audit import record
from dispatch.recordings import exists_elsewhere, file_in, playable
from ivr.console.auth import current_account, require
from ivr.console.state import actor, console_state
from ivr.console.templating import not_found

NO_STORE = {"cache-control": "no-store, private"}


@require()
async def play(request: Request) -> Response:
    state = console_state(request)
    account = current_account(request)
    assert account is not None
    token = request.path_params["token"][:64]
    async with state.sessions() as db:
        found = await playable(db, account.scope, token)
        path = file_in(state.settings.recordings.dir, found.file) if found else None
        if found is None or path is None or not path.is_file():
            await record(db, actor(request), "recording_refused", state.now(), token,
                         {"exists_elsewhere": await exists_elsewhere(db, token),
                          "file_missing": found is not None})
            return not_found(request, "No such recording in your region.")
        await record(db, actor(request), "recording_played", state.now(), token,
                     {"kind": found.kind.value, "uniqueid": found.uniqueid,
                      "order_id": found.order_id})
    return FileResponse(path, media_type="audio/wav", headers=NO_STORE,
                        content_disposition_type="inline")


ROUTES = [Route("/recordings/{token}", play, methods=["GET"])]
