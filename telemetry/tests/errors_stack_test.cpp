// The stack where an exception was thrown: recorded by the __cxa_throw hook (throws from
// our code and from inside libstdc++ alike), found again at the catch site by the
// exception object, and symbolised with function names; the loaded modules' build ids.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "errors/symbolize.hpp"
#include "errors/throw_stack.hpp"

namespace vigil::telemetry::internal {
namespace {

class ThrowStackTest : public ::testing::Test {
 protected:
  ThrowStackTest() { EnableThrowStacks(); }
  ~ThrowStackTest() override { DisableThrowStacks(); }
};

// Not inlined, so that it is a frame of its own with a name to look for.
[[gnu::noinline]] void ThrowFromHere(int depth) {
  if (depth > 0) {
    ThrowFromHere(depth - 1);
    asm volatile("" ::: "memory");  // no tail call
    return;
  }
  throw std::runtime_error("thrown on purpose");
}

bool HasFunction(const std::vector<StackFrame>& frames, std::string_view name) {
  for (const StackFrame& f : frames) {
    if (f.function.find(name) != std::string::npos) return true;
  }
  return false;
}

TEST_F(ThrowStackTest, TheThrowSiteIsFoundAtTheCatchSite) {
  RawStack stack;
  try {
    ThrowFromHere(2);
  } catch (const std::exception& e) {
    ASSERT_TRUE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack));
  }
  EXPECT_TRUE(stack.at_throw);
  ASSERT_GE(stack.size, 4u);
  const auto frames = Symbolizer::Instance().Frames(stack);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.front().function.find("ThrowFromHere"), std::string::npos)
      << "the innermost frame is the thrower, not the hook: " << frames.front().function;
  int throwers = 0;
  for (const StackFrame& f : frames)
    throwers += f.function.find("ThrowFromHere") != std::string::npos;
  EXPECT_GE(throwers, 2) << "its callers (the compiler may merge levels of the recursion)";
  EXPECT_TRUE(HasFunction(frames, "TheThrowSiteIsFoundAtTheCatchSite")) << "and its callers";
  EXPECT_TRUE(frames.front().in_app);
  EXPECT_FALSE(frames.front().module.empty());
}

TEST_F(ThrowStackTest, ThrowsInsideTheStandardLibraryAreRecordedToo) {
  std::vector<int> v(3);
  RawStack stack;
  try {
    static_cast<void>(v.at(7));
  } catch (const std::out_of_range& e) {
    ASSERT_TRUE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack));
  }
  const auto frames = Symbolizer::Instance().Frames(stack);
  EXPECT_TRUE(HasFunction(frames, "ThrowsInsideTheStandardLibraryAreRecordedToo"));
}

TEST_F(ThrowStackTest, AStackIsTakenOnceAndOnlyOnItsOwnThread) {
  std::exception_ptr crossed;
  std::thread([&] {
    try {
      ThrowFromHere(0);
    } catch (...) {
      crossed = std::current_exception();
    }
  }).join();
  RawStack stack;
  try {
    std::rethrow_exception(crossed);
  } catch (const std::exception& e) {
    EXPECT_FALSE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack))
        << "thrown on another thread";
  }
  try {
    ThrowFromHere(0);
  } catch (const std::exception& e) {
    EXPECT_TRUE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack));
    EXPECT_FALSE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack));
  }
}

TEST(ThrowStackOffTest, NothingIsRecordedWhileNoReporterWantsIt) {
  ASSERT_FALSE(ThrowStacksEnabled());
  try {
    ThrowFromHere(0);
  } catch (const std::exception& e) {
    RawStack stack;
    EXPECT_FALSE(TakeThrowStack(dynamic_cast<const void*>(&e), &typeid(e), stack));
  }
}

TEST(CaptureStackTest, TheCallersStackWithoutCaptureStackItself) {
  RawStack stack;
  CaptureStack(stack, 0);
  const auto frames = Symbolizer::Instance().Frames(stack);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.front().function.find("TheCallersStackWithoutCaptureStackItself"),
            std::string::npos)
      << frames.front().function;
}

TEST(SymbolizerTest, EveryModuleWithABuildIdIsAnImage) {
  const auto images = Symbolizer::Instance().Images();
  ASSERT_FALSE(images.empty());
  bool libc = false;
  for (const DebugImage& image : images) {
    EXPECT_GE(image.code_id.size(), 16u);
    EXPECT_EQ(image.debug_id.size(), 36u);
    EXPECT_GT(image.image_size, 0u);
    libc = libc || image.code_file.find("libc.so") != std::string::npos;
  }
  EXPECT_TRUE(libc);
  EXPECT_NE(images.front().code_file.find("errors_stack_test"), std::string::npos)
      << "the program first: " << images.front().code_file;
}

TEST(SymbolizerTest, DebugIdsAreBuildIdsAsLittleEndianGuids) {
  const std::uint8_t build_id[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                                   0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14};
  EXPECT_EQ(DebugIdOfBuildId(build_id), "04030201-0605-0807-090a-0b0c0d0e0f10");
  const std::uint8_t short_id[] = {0xaa, 0xbb};
  EXPECT_EQ(DebugIdOfBuildId(short_id), "0000bbaa-0000-0000-0000-000000000000");
}

TEST(SymbolizerTest, Demangles) {
  EXPECT_EQ(Demangle(typeid(std::out_of_range).name()), "std::out_of_range");
  EXPECT_EQ(Demangle("not mangled"), "not mangled");
}

}  // namespace
}  // namespace vigil::telemetry::internal
