"""runtime.instance_patch: the levers' wrappers (encode cache, decode layout, unet_reuse) come off in order."""
import pytest

from zrealism_core.engine.encode_cache import vae_encodings
from zrealism_core.runtime.decode_layout import channels_last_decode
from zrealism_core.runtime.instance_patch import method_replaced


class Net:
    def run(self, x):
        return ("class", x)


def test_nested_wrappers_come_off_in_order_and_the_class_method_shows_again():
    net = Net()
    with method_replaced(net, "run", lambda x: ("outer", x)):
        with method_replaced(net, "run", lambda x: ("inner", x)):
            assert net.run(1) == ("inner", 1)
        assert net.run(2) == ("outer", 2)  # an outer wrapper (a profiler) is put back, not dropped
    assert net.run(3) == ("class", 3) and "run" not in net.__dict__


def test_the_wrapper_comes_off_when_the_job_raises():
    net = Net()
    with pytest.raises(RuntimeError):
        with method_replaced(net, "run", lambda x: ("job", x)):
            raise RuntimeError("the sampler failed")
    assert net.run(1) == ("class", 1) and "run" not in net.__dict__


def test_the_vae_levers_keep_a_profilers_wrapper():
    torch = pytest.importorskip("torch")
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",))
    calls = []
    profiled_encode, profiled_decode = vae.encode, vae.decode

    def encode(x, *a, **k):
        calls.append("encode")
        return profiled_encode(x, *a, **k)

    def decode(z, *a, **k):
        calls.append("decode")
        return profiled_decode(z, *a, **k)

    class Pipe:
        extras: dict = {}

    vae.encode, vae.decode = encode, decode
    with torch.no_grad(), vae_encodings(Pipe(), vae), channels_last_decode(vae, True):
        x = torch.rand(1, 3, 16, 16)
        z = vae.encode(x).latent_dist.mean
        vae.encode(x.clone())  # the same pixels: served from the cache, the profiler is not called again
        vae.decode(z)
    assert calls == ["encode", "decode"]  # the levers ran through the profiler's wrappers
    assert vae.__dict__["encode"] is encode and vae.__dict__["decode"] is decode
