import pytest
import torch

from smartbrush.method.model import (
    has_mask_head,
    precision_class_labels,
    smartbrush_unet_from,
    tiny_unet,
    unet_image_channels,
)


def randomise(unet):
    """Random weights everywhere, zero-initialised layers of the parent included."""
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.normal_(0, 0.05)
    return unet


@pytest.mark.parametrize("channels", [3, 4], ids=["pixel", "latent"])
@pytest.mark.parametrize("kind", ["text-to-image", "inpainting"])
def test_conversion_preserves_the_parents_noise_prediction(channels, kind):
    torch.manual_seed(0)
    parent_in = channels if kind == "text-to-image" else 2 * channels + 1
    parent = randomise(tiny_unet(channels, in_channels=parent_in)).eval()
    child = smartbrush_unet_from(parent, image_channels=channels).eval()
    assert child.config.in_channels == 2 * channels + 1
    assert child.config.out_channels == channels + 1 and has_mask_head(child)
    assert unet_image_channels(child) == channels

    noisy, masked = torch.randn(2, channels, 32, 32), torch.randn(2, channels, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.5).float()
    timesteps, text = torch.tensor([3, 700]), torch.randn(2, 5, 32)
    levels = precision_class_labels(torch.tensor([0, 5]), 5)
    parent_input = noisy if kind == "text-to-image" else torch.cat([noisy, mask, masked], 1)
    with torch.no_grad():
        expected = parent(parent_input, timesteps, text).sample
        got = child(
            torch.cat([noisy, mask, masked], 1), timesteps, text, class_labels=levels
        ).sample
    torch.testing.assert_close(got[:, :channels], expected, rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(got[:, channels:]) == 0, "the new mask head starts at zero"


def test_new_weights_can_learn_precision():
    """The precision embedding's output layer is zero but its input layer is not: gradients flow."""
    child = smartbrush_unet_from(randomise(tiny_unet(3)), image_channels=3)
    child.class_embedding.linear_2.weight.data.normal_(0, 0.01)
    x = torch.randn(1, 7, 32, 32)
    out = child(x, torch.tensor([10]), torch.randn(1, 5, 32), class_labels=torch.tensor([400.0]))
    out.sample.square().mean().backward()
    assert child.class_embedding.linear_1.weight.grad.abs().sum() > 0
    assert child.conv_in.weight.grad[:, 3:].abs().sum() > 0, "new input channels learn"


def test_ablation_variants():
    parent = tiny_unet(3)
    plain = smartbrush_unet_from(
        parent, image_channels=3, mask_head=False, precision_conditioning=False
    )
    assert plain.config.out_channels == 3 and not has_mask_head(plain)
    assert plain.config.class_embed_type is None


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="expected a text-to-image UNet"):
        smartbrush_unet_from(tiny_unet(3, in_channels=5), image_channels=3)
