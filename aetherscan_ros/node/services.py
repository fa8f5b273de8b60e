# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The node's ``std_srvs/Trigger`` services: reconstruct, reset, save, pause, resume.

``~/save`` writes files and renders a preview (seconds for a large cloud): it runs on a
thread of its own and the service callback is a coroutine that waits for it, so the executor
keeps handling images, timers and other services meanwhile. Shutdown waits for a save in
progress (:meth:`Services.close`).
"""

from concurrent.futures import ThreadPoolExecutor
import os

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.parameter import Parameter
from rclpy.task import Future
from std_srvs.srv import Trigger


class Services:
    """Creates the services on ``node`` (one callback group) and answers them."""

    def __init__(self, node):
        self._node = node
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix='aetherscan_save')
        group = MutuallyExclusiveCallbackGroup()
        for name, handler in (('reconstruct', self.reconstruct), ('reset', self.reset),
                              ('pause', self.pause), ('resume', self.resume)):
            node.create_service(Trigger, f'~/{name}',
                                node.guard.wrap(f'~/{name}', handler, service=True),
                                callback_group=group)
        # its own group: a coroutine holds its group until it returns, and ~/reconstruct and
        # ~/reset must stay answerable while a save runs
        node.create_service(Trigger, '~/save', self.save,
                            callback_group=MutuallyExclusiveCallbackGroup())

    def close(self):
        """Wait for a save in progress (its files are complete or not there at all)."""
        self._saver.shutdown(wait=True)

    def reconstruct(self, request, response):
        """Start a reconstruction of the buffered keyframes (two are enough)."""
        response.success, response.message = self._node.try_start('service')
        return response

    def reset(self, request, response):
        """Clear the buffered keyframes; a running reconstruction goes on."""
        node = self._node
        count, busy = node.session.reset()
        node.outputs.event('reset', cleared=count)
        response.success = True
        response.message = f'cleared {count} buffered keyframe(s)' + (
            f'; reconstruction #{node.session.recon_id} keeps running' if busy else '')
        if node.mapping is not None:  # mode mapping: a new map (a running window is not fused)
            response.message += '; ' + node.mapping.reset()
        return response

    def pause(self, request, response):
        """Stop taking images and starting reconstructions (parameter ``enabled`` := false)."""
        return self._set_enabled(False, response)

    def resume(self, request, response):
        """Take images and start reconstructions again (parameter ``enabled`` := true)."""
        return self._set_enabled(True, response)

    def _set_enabled(self, enabled: bool, response):
        node = self._node
        was = node.config.enabled
        result = node.set_parameters([Parameter('enabled', value=enabled)])[0]
        response.success = result.successful
        if not result.successful:
            response.message = f'could not set enabled: {result.reason}'
            return response
        buffered = len(node.session.buffer)
        if was == enabled:
            response.message = f'already {"running" if enabled else "paused"}'
        else:
            response.message = (f'{"resumed" if enabled else "paused"}; '
                                f'{buffered} keyframe(s) buffered')
            node.outputs.event('resumed' if enabled else 'paused', buffered=buffered)
        if enabled:
            node.maybe_auto_trigger()
        return response

    async def save(self, request, response):
        """Run :meth:`save_now` on the save thread; the executor stays free meanwhile."""
        done = Future()

        def work():
            try:
                self.save_now(response)
            except Exception as exc:  # noqa: B902 - reported in the response, never raised
                response.success = False
                response.message = f'~/save failed: {type(exc).__name__}: {exc}'
            done.set_result(response)

        try:
            self._saver.submit(work)
        except RuntimeError:  # the node is shutting down
            response.success = False
            response.message = '~/save refused: the node is shutting down'
            return response
        return await done

    def save_now(self, response):
        """
        Write the last result into ``output_dir/reconstruction_NNNN`` as one atomic step.

        ``cloud.ply``, ``poses.json``, ``preview.png`` and the exports of ``save_exports``
        (:func:`aetherscan_ros.files.exports.write_exports`: ``colmap/``, ``transforms.json``,
        ``images/``, ``depth/``).

        The files go to a hidden temporary directory inside ``output_dir`` that is renamed
        when complete, so a crash or a failure never leaves a partial result, and a name in
        use (an earlier run) is never overwritten: ``_2``, ``_3``... are appended. Saving the
        same reconstruction again returns the directory written before.
        """
        from aetherscan_ros.files.atomic import save_directory_atomically
        from aetherscan_ros.files.exports import parse_exports, write_exports
        from aetherscan_ros.files.preview import render_preview
        from aetherscan_ros.files.results import PREVIEW_FILE, save_result
        node = self._node
        if node.mapping is not None:  # mode mapping: map.ply + keyframes.json (node/mapping.py)
            return node.mapping.save_now(response)
        session = node.session
        with session.lock:
            result, recon, names, saved = session.last()
            frames = session.last_frames  # the images of the exports (references)
        if result is None:
            response.success = False
            response.message = 'no reconstruction result to save yet'
            return response
        if saved is not None and os.path.isdir(saved):
            response.success = True
            response.message = saved
            return response

        def fill(directory):
            save_result(result, directory, image_names=list(names))
            render_preview(result, directory / PREVIEW_FILE)
            kinds = parse_exports(node.config.save_exports)
            images = [f.image for f in frames] if len(frames) == result.num_views else None
            if images is None and 'nerfstudio' in kinds:  # a result without its frames
                node.get_logger().warning(f'~/save: no images of the {result.num_views} views '
                                          'kept: transforms.json (nerfstudio) not written')
                kinds = tuple(k for k in kinds if k != 'nerfstudio')
            write_exports(result, directory, kinds, images)

        out_dir = node.config.resolved_output_dir()
        try:
            target = save_directory_atomically(out_dir, f'reconstruction_{recon:04d}', fill)
        except Exception as exc:  # noqa: B902 - disk full, permissions, preview... all reported
            session.count('saves_failed')
            response.success = False
            response.message = (f'save of reconstruction #{recon} into {out_dir} failed '
                                f'(nothing written): {type(exc).__name__}: {exc}')
            node.get_logger().error(response.message)
            return response
        session.mark_saved(recon, str(target))
        session.count('saves_ok')
        node.outputs.event('saved', reconstruction=recon, path=str(target),
                           exports=list(node.config.save_exports))
        response.success = True
        response.message = str(target)
        return response
