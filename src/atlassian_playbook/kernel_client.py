"""The client runs talk to their kernel through: ready as soon as IOPub is shown connected.

A kernel start ends, warm or cold, with jupyter_client's ``wait_for_ready``; this module's
client drops the 0.2 s of silence that wait ends with (:func:`promptly_ready_client`).
"""

from __future__ import annotations

import functools

__all__ = ["DIED_AT_START", "promptly_ready_client"]

# What jupyter_client raises when the kernel process exits before answering ``kernel_info``
# (KernelClient.wait_for_ready), and so does our client: no cell has run yet, so
# run_notebook may start another kernel.
DIED_AT_START = "Kernel died before replying to kernel_info"


@functools.cache
def promptly_ready_client():
    """jupyter_client's async client, ready as soon as its IOPub channel is shown connected.

    ``wait_for_ready`` sends ``kernel_info`` until the reply comes and an IOPub message
    follows it (a SUB socket drops what is published before its subscription lands), then
    reads IOPub until 0.2 s pass in silence: every kernel start, warm or cold, ends with 0.2 s
    of nothing, on the critical path of every notebook. This client stops reading at the
    ``idle`` status of its own ``kernel_info``, the last message the kernel publishes for it:
    the same proof that IOPub is connected, the same reply handled, without the silence. A
    message a later request could mistake for its own cannot follow: nbclient matches every
    IOPub message to its request by the parent's message id.
    """
    import time
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient

    class PromptlyReadyClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            connected = False  # an IOPub message arrived: the subscription has landed
            while True:
                request = self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    idle, connected = await self._idle_of(request, connected, deadline)
                    if idle:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError(DIED_AT_START)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

        async def _idle_of(self, request: str, connected: bool,
                           deadline: float) -> tuple[bool, bool]:
            """Read IOPub until ``request``'s idle status: (seen it, IOPub connected).

            Before IOPub is known connected, a message of another request (a kernel that
            prints on its own) may come after this request's idle was lost: ask again, now
            connected, and that request's idle must come.
            """
            ours = False
            while time.monotonic() <= deadline:
                try:
                    message = await self.iopub_channel.get_msg(timeout=0.2)
                except Empty:
                    return False, connected
                if message["parent_header"].get("msg_id") == request:
                    ours = True
                    if (message["msg_type"] == "status"
                            and message["content"].get("execution_state") == "idle"):
                        return True, True
                elif not (connected or ours):
                    return False, True
            return False, connected

    return PromptlyReadyClient
